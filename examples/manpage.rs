//! The manual page, sigward(1), generated from the clap definition the parser uses, so the two
//! cannot disagree: `cargo run --example manpage > sigward.1`, then `man -l sigward.1`.
//!
//! clap_mangen renders the title, name, synopsis, description and options (each with its
//! variable); the sections below them come from the `--help` epilogue (stop budget, durations,
//! exit status, environment, engine's init, examples), with every `SIGWARD_*` variable listed
//! beside its flag in ENVIRONMENT. A dev-dependency only: nothing of this is in the binary.

use clap_mangen::Man;
use std::io::Write;

/// Text for roff: a backslash is `\e`, a hyphen a real minus (`\-`, so flags can be searched and
/// copied), and a line starting with `.` or `'` is not read as a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

/// `run as docker-init ...)` of a heading's `(run as docker-init ...):` as a line of its own.
fn line_of(more: &str) -> &str {
    more.strip_suffix("):")
        .or(more.strip_suffix(')'))
        .unwrap_or(more)
}

fn main() -> std::io::Result<()> {
    let command = sigward::config::manual();
    let man = Man::new(command.clone())
        .manual("sigward")
        .source(format!("sigward {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    // Each section rendered alone repeats the page's preamble (the `Aq` string): keep the first.
    let text = String::from_utf8_lossy(&page).into_owned();
    let preamble: Vec<&str> = text.lines().take(2).collect();
    let mut page = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i < 2 || !preamble.contains(&line) {
            writeln!(page, "{line}")?;
        }
    }

    let epilogue = command
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    // "Heading:" at the left margin starts a section; its indented lines are kept as laid out.
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for line in epilogue.lines() {
        match line.strip_suffix(':') {
            // A long heading's parenthesis becomes its section's first line.
            Some(h) if !line.starts_with(' ') => match h.split_once(" (") {
                Some((h, more)) => sections.push((h.to_uppercase(), vec![line_of(more)])),
                None => sections.push((h.to_uppercase(), Vec::new())),
            },
            _ => {
                if let Some((_, body)) = sections.last_mut() {
                    body.push(line.strip_prefix("  ").unwrap_or(line));
                }
            }
        }
    }
    for (heading, body) in &sections {
        writeln!(page, ".SH \"{heading}\"")?;
        if heading == "ENVIRONMENT" {
            for arg in command.get_arguments() {
                let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
                    continue;
                };
                writeln!(page, ".TP\n.B {}", roff(&var.to_string_lossy()))?;
                writeln!(page, "As \\fB\\-\\-{}\\fR.", roff(long))?;
            }
            writeln!(page, ".PP")?;
        }
        writeln!(page, ".nf")?;
        for line in body {
            writeln!(page, "{}", roff(line))?;
        }
        writeln!(page, ".fi")?;
    }
    writeln!(
        page,
        ".SH \"SEE ALSO\"\nThe README: {}",
        roff(env!("CARGO_PKG_REPOSITORY"))
    )?;
    std::io::stdout().write_all(&page)
}
