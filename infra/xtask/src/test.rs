//! `cargo xtask test`: the whole suite, with what it needs installed first where this
//! machine allows (cargo-lambda under target/tools, Chromium and Node through apt as root,
//! playwright-core through npm). A test whose prerequisite cannot be had is skipped, every
//! other test still runs, and the run fails at the end, saying what to install.
//!
//! Ends with one line over everything that ran, `N passed, N failed[, N skipped]`, then a
//! line per reason something was skipped.

use crate::say;
use devkit::localpg;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// connector/tests/e2e: the dashboard in a real Chromium.
const BROWSER_TEST: &str = "the_dashboard_shows_money_moving_in_a_real_browser";

/// Tests left out because something they need is missing.
struct Skip {
    /// Which tests, for people.
    what: String,
    /// Why, and what to install.
    why: String,
    /// The same tests as a nextest filterset.
    filterset: String,
    /// The same tests as libtest `--skip` patterns (`cargo test`), when names can say it.
    names: Vec<String>,
    /// How many tests that is, when known.
    count: Option<u64>,
    /// Whether they are whole test binaries, which nextest then does not run at all, nor
    /// count as skipped.
    whole_binaries: bool,
    /// Skipped on purpose (`BILLWIRE_SKIP_SAM=1`): said loudly, but not a failure.
    acknowledged: bool,
}

/// What ran, added up over nextest (or `cargo test`) and the doctests.
#[derive(Default, Debug, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    skipped: u64,
    /// Why some ran not at all or not to the end (a build that failed, ...).
    notes: Vec<String>,
}

fn step(line: &str) {
    say(&format!("xtask: {line}"));
}

pub async fn run(extra: &[String]) -> Result<(), String> {
    let root = localpg::workspace_root();
    let mut skips = Vec::new();
    if let Err(why) = devkit::tools::ensure_cargo_lambda(&root, &step) {
        step(&format!("{why}\nxtask: the tests that run it are skipped"));
        skips.push(Skip {
            what: "the tests that run `cargo lambda watch` (connector's e2e, xtask's dev)".into(),
            why,
            filterset: "(package(=connector) & binary(=e2e)) | (package(=xtask) & binary(=dev))"
                .into(),
            names: Vec::new(),
            count: None,
            whole_binaries: true,
            acknowledged: false,
        });
    }
    let containers = [
        (
            samlocal::unavailable(),
            "the SAM local tests (infra/samlocal)",
            "package(=samlocal)",
            "docker.io",
        ),
        (
            rehearsal::unavailable(),
            "the rehearsal of the deployed stack (infra/rehearsal)",
            "package(=rehearsal)",
            "docker.io, pgbouncer and nginx-light",
        ),
    ];
    for (unavailable, what, filterset, packages) in containers {
        if let Some(why) = unavailable {
            skips.push(container_skip(why, what, filterset, packages));
        }
    }
    if let Err(why) = browser_prerequisites(&root) {
        step(&format!("{why}\nxtask: the browser test is skipped"));
        // Counted once: with cargo-lambda missing it is skipped among the e2e tests.
        let counted = if skips.is_empty() { 1 } else { 0 };
        skips.push(Skip {
            what: format!("{BROWSER_TEST} (connector's e2e)"),
            why,
            filterset: format!("test(={BROWSER_TEST})"),
            names: vec![BROWSER_TEST.into()],
            count: Some(counted),
            whole_binaries: false,
            acknowledged: false,
        });
    }
    let server = crate::ensure_postgres().await?;
    crate::sweep_stale_test_databases(&server).await;

    let mut tally = Tally::default();
    // The end-to-end tests run the real binaries: the gateway, the connector, and every
    // function under cargo lambda watch.
    step("building every binary");
    let built = cargo(&root)
        .args(["build", "--workspace", "--bins"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if built.success() {
        let nextest = cargo(&root)
            .args(["nextest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if nextest {
            nextest_run(&root, extra, &mut skips, &server.admin_url, &mut tally)?;
        } else {
            step("cargo-nextest not found; running `cargo test` (`cargo install cargo-nextest` runs the suite faster)");
            libtest_run(&root, extra, &skips, &server.admin_url, &mut tally)?;
        }
    } else {
        tally.notes.push(
            "not run: every test, as `cargo build --workspace --bins` failed (see above)".into(),
        );
    }
    let _ = std::io::stderr().flush();
    print_summary(&tally, &skips);
    if tally.failed > 0 || skips.iter().any(|s| !s.acknowledged) || !tally.notes.is_empty() {
        return Err(String::new());
    }
    Ok(())
}

/// `cargo`, without the variables `cargo run` set for xtask, with target/tools on PATH.
/// Container tests that cannot run here: skipped on purpose with BILLWIRE_SKIP_SAM=1,
/// otherwise counted as not run, which fails the run.
fn container_skip(why: String, what: &str, filterset: &str, packages: &str) -> Skip {
    let acknowledged = std::env::var("BILLWIRE_SKIP_SAM").is_ok_and(|v| v == "1");
    step(&format!("{why}\nxtask: {what} are skipped"));
    Skip {
        what: what.into(),
        why: if acknowledged {
            format!("{why} (BILLWIRE_SKIP_SAM=1)")
        } else {
            format!(
                "{why}; install {packages} and start dockerd, or set BILLWIRE_SKIP_SAM=1 to \
                 skip them on purpose"
            )
        },
        filterset: filterset.into(),
        names: Vec::new(),
        count: None,
        whole_binaries: true,
        acknowledged,
    }
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    for name in devkit::supervisor::package_env_vars() {
        cmd.env_remove(name);
    }
    cmd.current_dir(root).env("PATH", devkit::tools::path(root));
    cmd
}

fn nextest_run(
    root: &Path,
    extra: &[String],
    skips: &mut [Skip],
    database_url: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let (mut args, filtersets) = split_filtersets(extra);
    for skip in skips.iter_mut().filter(|s| s.count.is_none()) {
        let mut filter = skip.filterset.clone();
        if !filtersets.is_empty() {
            filter = format!("({}) & ({filter})", filtersets.join(" | "));
        }
        skip.count = nextest_count(root, &filter);
    }
    if !skips.is_empty() {
        let skipped: Vec<&str> = skips.iter().map(|s| s.filterset.as_str()).collect();
        let mut filter = format!("not ({})", skipped.join(" | "));
        if !filtersets.is_empty() {
            // Filtersets given on the command line are a union; ours narrows it.
            filter = format!("({}) & {filter}", filtersets.join(" | "));
        }
        args.splice(0..0, ["-E".to_string(), filter]);
    } else {
        for f in filtersets.into_iter().rev() {
            args.splice(0..0, ["-E".to_string(), f]);
        }
    }
    // Two passes: the suite, in parallel; then the load tests (`#[ignore = "load: ..."]`),
    // one at a time with nothing else running, so that they measure the connector and not
    // their neighbours, and their load slows no timed test.
    let passes: [(&str, &[&str]); 2] = [
        ("the tests", &[]),
        (
            "the load tests (one at a time)",
            &["--run-ignored", "only", "--test-threads", "1"],
        ),
    ];
    for (index, (what, pass_args)) in passes.into_iter().enumerate() {
        if index == 1 {
            step("the load tests, alone");
        }
        let mut cmd = cargo(root);
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        if index == 1 {
            // None may be selected by the filters given; that is not a failure.
            cmd.arg("--no-tests=pass");
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr())
            && !args.iter().any(|a| a.starts_with("--color"))
        {
            // Its stderr is a pipe to us, and we pass it on to a terminal.
            cmd.arg("--color=always");
        }
        cmd.args(pass_args)
            .args(&args)
            .env("DATABASE_URL", database_url);
        let mut summary = None;
        let status = run_forwarding(&mut cmd, Stream::Stderr, &mut |line| {
            if let Some(s) = parse_nextest_summary(line) {
                summary = Some(s);
            }
        })?;
        match summary {
            Some(s) => {
                tally.passed += s.passed;
                tally.failed += s.failed;
                if index == 1 {
                    // The first pass counted them as skipped.
                    tally.skipped = tally.skipped.saturating_sub(s.passed + s.failed);
                } else {
                    tally.skipped += s.skipped;
                    tally.skipped += skips
                        .iter()
                        .filter(|s| s.whole_binaries)
                        .filter_map(|s| s.count)
                        .sum::<u64>();
                }
            }
            None if index == 1 && status.success() => {}
            None => tally.notes.push(format!(
                "not run: {what}, as cargo nextest stopped before running them ({status}; see above)"
            )),
        }
    }
    doctests(root, database_url, tally)
}

/// How many tests `filter` selects, if nextest can say.
fn nextest_count(root: &Path, filter: &str) -> Option<u64> {
    let out = cargo(root)
        .args([
            "nextest",
            "list",
            "--workspace",
            "--message-format",
            "oneline",
            "-E",
        ])
        .arg(filter)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64
    })
}

fn libtest_run(
    root: &Path,
    extra: &[String],
    skips: &[Skip],
    database_url: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut args: Vec<String> = extra.to_vec();
    let names: Vec<&String> = skips.iter().flat_map(|s| &s.names).collect();
    if !names.is_empty() {
        if !args.iter().any(|a| a == "--") {
            args.push("--".into());
        }
        for name in names {
            args.extend(["--skip".to_string(), name.clone()]);
        }
    }
    let mut cmd = cargo(root);
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(&args)
        .env("DATABASE_URL", database_url);
    let status = run_forwarding(&mut cmd, Stream::Stdout, &mut |line| {
        if let Some(t) = parse_libtest_result(line) {
            tally.passed += t.passed;
            tally.failed += t.failed;
            tally.skipped += t.skipped;
        }
    })?;
    if !status.success() && tally.failed == 0 {
        tally.notes.push(format!(
            "not run: some tests, as cargo test stopped early ({status}; see above)"
        ));
    }
    Ok(())
}

/// nextest does not run doctests.
fn doctests(root: &Path, database_url: &str, tally: &mut Tally) -> Result<(), String> {
    step("doctests");
    let mut cmd = cargo(root);
    cmd.args(["test", "--workspace", "--doc"])
        .env("DATABASE_URL", database_url);
    let mut ran = Tally::default();
    let status = run_forwarding(&mut cmd, Stream::Stdout, &mut |line| {
        if let Some(t) = parse_libtest_result(line) {
            ran.passed += t.passed;
            ran.failed += t.failed;
            ran.skipped += t.skipped;
        }
    })?;
    if !status.success() && ran.failed == 0 {
        tally.notes.push(format!(
            "not run: the doctests, as they did not build ({status}; see above)"
        ));
    }
    tally.passed += ran.passed;
    tally.failed += ran.failed;
    tally.skipped += ran.skipped;
    Ok(())
}

fn print_summary(tally: &Tally, skips: &[Skip]) {
    let mut lines = vec![String::new()];
    let mut head = format!("{} passed, {} failed", tally.passed, tally.failed);
    // nextest does not count the tests of a binary it did not run at all (filtered out).
    let known: Option<u64> = skips.iter().map(|s| s.count).sum();
    let skipped = tally.skipped.max(known.unwrap_or(0));
    if skipped > 0 {
        head.push_str(&format!(", {skipped} skipped"));
    }
    lines.push(head);
    for skip in skips {
        lines.push(format!("skipped: {}: {}", skip.what, skip.why));
    }
    if let Some(known) = known {
        if tally.skipped > known {
            lines.push(format!(
                "skipped: {} more, marked #[ignore] or outside the filters given",
                tally.skipped - known
            ));
        }
    }
    lines.extend(tally.notes.iter().cloned());
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", lines.join("\n"));
    let _ = out.flush();
}

/// Separates nextest filtersets (`-E X`, `--filterset X`, `--filterset=X`, and the older
/// `--filter-expr`) from the other arguments, so that they can be combined with ours.
fn split_filtersets(extra: &[String]) -> (Vec<String>, Vec<String>) {
    let mut rest = Vec::new();
    let mut filtersets = Vec::new();
    let mut args = extra.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(args.by_ref().cloned());
            break;
        }
        if matches!(arg.as_str(), "-E" | "--filterset" | "--filter-expr") {
            if let Some(value) = args.next() {
                filtersets.push(value.clone());
            }
        } else if let Some(value) = arg
            .strip_prefix("--filterset=")
            .or_else(|| arg.strip_prefix("--filter-expr="))
        {
            filtersets.push(value.to_string());
        } else if let Some(value) = arg.strip_prefix("-E").filter(|v| !v.is_empty()) {
            filtersets.push(value.to_string());
        } else {
            rest.push(arg.clone());
        }
    }
    (rest, filtersets)
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Runs `cmd` with `stream` passed on line by line to ours (colours and all), and each
/// line, without colours, to `on_line`.
fn run_forwarding(
    cmd: &mut Command,
    stream: Stream,
    on_line: &mut dyn FnMut(&str),
) -> Result<ExitStatus, String> {
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()),
        Stream::Stderr => cmd.stderr(Stdio::piped()),
    };
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let pipe: Box<dyn Read> = match stream {
        Stream::Stdout => match child.stdout.take() {
            Some(p) => Box::new(p),
            None => return Err("no stdout pipe".into()),
        },
        Stream::Stderr => match child.stderr.take() {
            Some(p) => Box::new(p),
            None => return Err("no stderr pipe".into()),
        },
    };
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = match stream {
                    Stream::Stdout => std::io::stdout().write_all(&line),
                    Stream::Stderr => std::io::stderr().write_all(&line),
                };
                on_line(&strip_ansi(&String::from_utf8_lossy(&line)));
            }
        }
    }
    child.wait().map_err(|e| format!("cargo: {e}"))
}

/// Without ANSI escape sequences (colours, cursor movement).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

/// nextest's last line: `Summary [ 174.2s] 95 tests run: 95 passed, 0 skipped`, or
/// `... 95 tests run: 91 passed (2 slow), 3 failed, 1 timed out, 2 skipped`, or
/// `40/95 tests run: ...` when cancelled. Every test that ran and did not pass, or did not
/// run at all when it should have, counts as failed.
fn parse_nextest_summary(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("Summary [")?;
    let (_, rest) = rest.split_once(']')?;
    let (run, outcomes) = rest.split_once(':')?;
    // "95 tests run", or "40/95 tests run": what should have run is the last number.
    let run = run.split_whitespace().next()?;
    let total = run.rsplit('/').next()?.parse::<u64>().ok()?;
    // Drop the parenthesised details: "91 passed (2 slow, 1 flaky)".
    let mut plain = String::new();
    let mut depth = 0;
    for c in outcomes.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut passed = 0;
    let mut skipped = 0;
    for part in plain.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => passed = n,
            "skipped" => skipped = n,
            _ => {}
        }
    }
    Some(Counts {
        passed,
        failed: total.saturating_sub(passed),
        skipped,
    })
}

/// libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out;
/// finished in 0.01s`. Ignored and filtered-out tests count as skipped.
fn parse_libtest_result(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, rest) = rest.split_once(". ")?;
    let mut counts = Counts {
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    for part in rest.split(';') {
        let part = part.trim();
        let Some((n, what)) = part.split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            "ignored" | "filtered out" => counts.skipped += n,
            _ => {}
        }
    }
    Some(counts)
}

/// The dashboard's browser test (an e2e test) drives Chromium with playwright-core from
/// Node. As root on a machine with apt, installs Chromium, Node and npm when missing; the
/// npm package is fetched here. `Err`: what is missing and how to install it.
fn browser_prerequisites(root: &Path) -> Result<(), String> {
    let apt = devkit::tools::can_apt();
    let apt_hint = if devkit::tools::is_root() {
        "apt-get install"
    } else {
        "sudo apt-get install"
    };
    if node_major().is_none_or(|v| v < 18) || !runs("npm", "--version") {
        if apt {
            step("Node or npm is missing (the dashboard's browser test runs on Node 18+)");
            devkit::tools::apt_install(&["nodejs", "npm"], &step)?;
        }
        match node_major() {
            Some(v) if v >= 18 && runs("npm", "--version") => {}
            Some(v) if v < 18 => {
                return Err(format!(
                    "the dashboard's browser test needs Node 18 or later, and this is Node {v}: \
                     install a newer one (https://nodejs.org)"
                ))
            }
            _ => {
                return Err(format!(
                    "the dashboard's browser test needs Node 18+ and npm: install them \
                     (Debian/Ubuntu: {apt_hint} nodejs npm)"
                ))
            }
        }
    }
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        if !Path::new(&path).is_file() {
            return Err(format!(
                "CHROMIUM={} is not a file: point it at a Chrome or Chromium binary, or unset it",
                Path::new(&path).display()
            ));
        }
    }
    if testkit::browser::chromium().is_none() {
        if apt {
            step("Chromium is missing (the dashboard's browser test drives it)");
            devkit::tools::apt_install(&["chromium"], &step)?;
        }
        if testkit::browser::chromium().is_none() {
            return Err(format!(
                "the dashboard's browser test needs Chromium: install it (Debian/Ubuntu: \
                 {apt_hint} chromium), or set CHROMIUM to a Chrome or Chromium binary"
            ));
        }
    }
    let tests = root.join("web").join("tests");
    if !tests.join("node_modules").join("playwright-core").exists() {
        step("npm ci in web/tests (playwright-core, for the browser test)");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&tests)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(
                "`npm ci` in web/tests failed (see above): the browser test needs \
                 playwright-core from npm"
                    .into(),
            );
        }
    }
    Ok(())
}

fn runs(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Node's major version, if Node runs.
fn node_major() -> Option<u32> {
    let out = Command::new("node").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nextest_summaries_add_up() {
        let c = |passed, failed, skipped| {
            Some(Counts {
                passed,
                failed,
                skipped,
            })
        };
        assert_eq!(
            parse_nextest_summary("     Summary [ 174.2s] 95 tests run: 95 passed, 0 skipped"),
            c(95, 0, 0)
        );
        assert_eq!(
            parse_nextest_summary(
                "Summary [  12.0s] 95 tests run: 90 passed (2 slow, 1 flaky), 3 failed, 2 timed out, 1 skipped"
            ),
            c(90, 5, 1)
        );
        assert_eq!(
            parse_nextest_summary("Summary [   1.0s] 1 test run: 1 passed, 94 skipped"),
            c(1, 0, 94)
        );
        assert_eq!(
            parse_nextest_summary(
                "Summary [  30.0s] 40/95 tests run: 39 passed, 1 failed, 0 skipped"
            ),
            c(39, 56, 0)
        );
        assert_eq!(
            parse_nextest_summary(&strip_ansi(
                "\u{1b}[32;1m     Summary\u{1b}[0m [   2.5s] \u{1b}[1m3\u{1b}[0m tests run: \u{1b}[1m3\u{1b}[0m \u{1b}[32;1mpassed\u{1b}[0m, \u{1b}[1m0\u{1b}[0m \u{1b}[33;1mskipped\u{1b}[0m"
            )),
            c(3, 0, 0)
        );
        assert_eq!(parse_nextest_summary("        PASS [   0.1s] a::b"), None);
    }

    #[test]
    fn libtest_results_add_up() {
        assert_eq!(
            parse_libtest_result(
                "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 2 filtered out; finished in 0.01s"
            ),
            Some(Counts {
                passed: 3,
                failed: 0,
                skipped: 3
            })
        );
        assert_eq!(
            parse_libtest_result("test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s"),
            Some(Counts {
                passed: 1,
                failed: 2,
                skipped: 0
            })
        );
        assert_eq!(parse_libtest_result("running 3 tests"), None);
    }

    #[test]
    fn filtersets_given_are_kept_apart() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_filtersets(&args(&[
                "-E",
                "test(a)",
                "--filterset=package(b)",
                "-Etest(c)",
                "name",
                "--",
                "-E",
                "x"
            ])),
            (
                args(&["name", "--", "-E", "x"]),
                args(&["test(a)", "package(b)", "test(c)"])
            )
        );
    }
}
