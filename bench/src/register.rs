//! `spacebar-bench register`: registrations per second, one at a time and `--concurrency` at a
//! time. On most servers this measures password hashing (bcrypt), run at the server's own cost
//! factor.

use clap::Args;

use crate::target::{self, Target};
use crate::{rest, BoxError};

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
}

pub fn run(args: RegisterArgs) -> Result<(), BoxError> {
    if args.count == 0 || args.concurrency == 0 {
        return Err("--count and --concurrency must be at least 1".into());
    }
    let api = args.target.api();
    println!("{}", target::machine_note(&args.target.base()));
    actix_rt::System::new().block_on(async {
        let client = rest::client(args.target.timeout());
        for concurrency in [1, args.concurrency] {
            // A run id of its own: the e-mail addresses of the two runs differ.
            let run_id = target::run_id();
            let reg = rest::register_all(&client, &api, args.count, concurrency, &run_id).await;
            println!("{concurrency} at a time: {}", reg.describe(args.count));
        }
    });
    Ok(())
}
