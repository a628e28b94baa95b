//! `spacebar-bench register`: registrations per second, one at a time and `--concurrency` at a
//! time. On most servers this measures password hashing (bcrypt), run at the server's own cost
//! factor.

use clap::Args;

use crate::target::{self, Target};
use crate::{rest, sys, BoxError};

#[derive(Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    target: Target,
    /// Users registered in each of the two runs.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Requests in flight in the second run.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// PID of the server, for its CPU time per registration.
    #[arg(long)]
    server_pid: Option<u32>,
}

pub fn run(args: RegisterArgs) -> Result<(), BoxError> {
    if args.count == 0 || args.concurrency == 0 {
        return Err("--count and --concurrency must be at least 1".into());
    }
    let api = args.target.api();
    println!("{}", target::machine_note(&args.target.base()));
    actix_rt::System::new().block_on(async {
        let client = rest::client(args.target.timeout());
        let pids: Vec<u32> = args.server_pid.into_iter().collect();
        for concurrency in [1, args.concurrency] {
            // A run id of its own: the e-mail addresses of the two runs differ.
            let run_id = target::run_id();
            let cpu = sys::CpuWindow::start(&pids);
            let reg = rest::register_all(&client, &api, args.count, concurrency, &run_id).await;
            println!("{concurrency} at a time: {}", reg.describe(args.count));
            if let Some(used) = cpu.server_cpu().filter(|_| !reg.tokens.is_empty()) {
                println!(
                    "  server CPU per registration: {:.0} ms ({})",
                    used.as_secs_f64() * 1e3 / reg.tokens.len() as f64,
                    cpu.describe()
                );
            }
        }
    });
    Ok(())
}
