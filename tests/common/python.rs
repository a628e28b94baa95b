//! Python clients from PyPI (discord.py, aiortc, moto), each installed once into its own
//! virtualenv under the target directory, so a plain `cargo test` works on a fresh machine with
//! `python3` (and, on Debian's own Python, the `python3-venv` package).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// Tests of one run are threads of one process: one of them at a time makes a venv, so two
/// asking for the same one never build it in the same staging directory.
static MAKING: Mutex<()> = Mutex::new(());

/// The venv `name` holding `requirements`, installed unless `check` (Python code) already
/// succeeds in it; the venv's python, or why it could not be had. Run a package's tool as
/// `python -m module`, never by its script in `bin/`: the venv is built in a staging directory
/// and moved, so those scripts' shebangs name a python that no longer exists.
pub fn venv(name: &str, requirements: &[&str], check: &str) -> Result<PathBuf, String> {
    let _making = MAKING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = root.join("bin").join("python");
    if passes(&python, check) {
        return Ok(python);
    }
    let staging = root.with_file_name(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run(Command::new("python3").arg("-m").arg("venv").arg(&staging))?;
    run(Command::new(staging.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements))?;
    if root.exists() && !passes(&python, check) {
        // A venv of another pinned version: replace it.
        let _ = std::fs::remove_dir_all(&root);
    }
    if std::fs::rename(&staging, &root).is_err() {
        // Another run put its own in place first; use that one.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if passes(&python, check) {
        Ok(python)
    } else {
        Err(format!(
            "{requirements:?} not importable from {}",
            python.display()
        ))
    }
}

fn passes(python: &Path, check: &str) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", check])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed (on Debian, `apt-get install python3-venv`):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The lines a client script prints on its stdout (piped), as they come.
pub fn stdout_lines(child: &mut Child) -> UnboundedReceiver<String> {
    let (sender, lines) = unbounded_channel();
    let stdout = child.stdout.take().expect("the script's stdout is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}
