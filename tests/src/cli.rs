//! Driving the real `amparo` command line as a process: one profile folder
//! per person, the PIN from `AMPARO_PIN` as a script would pass it, `--json`
//! output parsed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `amparo` binary: `AMPARO_BIN` if set, else the one cargo built next
/// to the running test, building it first if it is missing.
pub fn amparo_binary() -> PathBuf {
    crate::built_binary("AMPARO_BIN", "amparo", "amparo")
}

/// One person's `amparo`: a profile folder and a PIN.
pub struct Person {
    pub dir: PathBuf,
    pub pin: String,
}

/// What a run printed.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `--json` output.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

impl Person {
    /// A person whose profile lives in `root/name`.
    pub fn new(root: &Path, name: &str) -> Person {
        Person {
            dir: root.join(name),
            pin: format!("{name}-1357"),
        }
    }

    /// Runs `amparo --profile DIR --lang en ARGS` with the PIN in the
    /// environment.
    pub fn try_run(&self, args: &[&str]) -> Run {
        self.try_run_with_pin(&self.pin, args)
    }

    /// As [`Person::try_run`] with another PIN.
    pub fn try_run_with_pin(&self, pin: &str, args: &[&str]) -> Run {
        Run::from(
            Command::new(amparo_binary())
                .arg("--profile")
                .arg(&self.dir)
                .args(["--lang", "en"])
                .args(args)
                .env("AMPARO_PIN", pin)
                .env_remove("AMPARO_PROFILE")
                .env_remove("AMPARO_RELAY")
                .env_remove("AMPARO_PROXY")
                .output()
                .expect("run amparo"),
        )
    }

    /// Runs with `--json` and returns the parsed output; panics on failure.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.try_run(&all);
        assert!(
            run.ok,
            "amparo {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run.json()
    }
}
