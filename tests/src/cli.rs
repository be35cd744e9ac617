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
            self.command_with_pin(pin, args)
                .output()
                .expect("run amparo"),
        )
    }

    /// The command [`Person::try_run`] runs, not started: for a test that
    /// starts it as a child and, say, kills it half-way.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with_pin(&self.pin, args)
    }

    fn command_with_pin(&self, pin: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(amparo_binary());
        cmd.arg("--profile")
            .arg(&self.dir)
            .args(["--lang", "en"])
            .args(args)
            .env("AMPARO_PIN", pin)
            .env_remove("AMPARO_PROFILE")
            .env_remove("AMPARO_RELAY")
            .env_remove("AMPARO_PROXY");
        cmd
    }

    /// Creates this person's profile with `role` and `extra` flags, with the
    /// fast key derivation meant for tests; returns the `--json` output.
    pub fn create(&self, role: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "profile",
            "create",
            "--role",
            role,
            "--dangerously-fast-kdf",
        ];
        args.extend_from_slice(extra);
        self.json(&args)
    }

    /// SQLite's own `PRAGMA integrity_check` of the profile database, read
    /// only: `"ok"` for a sound file, else what is damaged.
    pub fn profile_integrity(&self) -> String {
        use sqlx::ConnectOptions;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.dir.join("profile.sqlite"))
            .read_only(true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime for the integrity check");
        rt.block_on(async move {
            let mut conn = options
                .connect()
                .await
                .expect("open the profile database read-only");
            let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
                .fetch_all(&mut conn)
                .await
                .expect("run PRAGMA integrity_check");
            rows.into_iter()
                .map(|(r,)| r)
                .collect::<Vec<_>>()
                .join("; ")
        })
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

/// A `[[focal_point]]` entry of a directory source (`coordinator sign`) for
/// a focal point whose `profile create --role focal-point` (or `focal public`)
/// printed `keys`; it serves `region` and offers legal advice and health care
/// in Spanish and Portuguese.
pub fn focal_point_toml(id: &str, name: &str, region: &str, keys: &serde_json::Value) -> String {
    let key = |field: &str| {
        keys[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {keys}"))
            .to_string()
    };
    format!(
        r#"
[[focal_point]]
id = "{id}"
name = {{ es = "{name}", pt = "{name}", en = "{name}" }}
organization = "{name}"
regions = ["{region}"]
categories = ["legal_advice", "health_care"]
languages = ["es", "pt"]
sealing_key = "{}"
signing_key = "{}"
valid_from = "2026-01-01"
valid_until = "2036-01-01"
reads = ["deflate_d1"]
"#,
        key("sealing_key"),
        key("signing_key")
    )
}
