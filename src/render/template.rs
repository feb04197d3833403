//! Operator templates (minijinja): `template = "path"` on a destination,
//! and an e-mail destination's `subject`.
//!
//! Compiled when the configuration is loaded (`check`, start, reload), so a
//! syntax error, an unknown filter or an unknown test is a config error
//! naming the file and line. Rendering is bounded: fuel caps the work a
//! template may do (a loop cannot spin forever), the output is cut off at
//! [`MAX_OUTPUT`], and values are escaped for the target by default (JSON
//! literals for JSON targets, HTML for e-mail), so untrusted alert text
//! cannot break out of the document.

use super::escape::{clean, defuse_markdown, escape_slack, truncate};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Instructions one rendering may execute; a card with every fact takes a
/// few hundred.
const FUEL: u64 = 100_000;
/// Largest rendered output, in bytes.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Name of the subject template inside an environment.
const SUBJECT: &str = "subject";

/// How values printed with `{{ … }}` are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Printed as JSON literals (strings quoted and escaped).
    Json,
    /// HTML-escaped (the e-mail HTML part).
    Html,
}

/// One destination's compiled templates.
#[derive(Clone)]
pub struct Templates(Arc<Inner>);

struct Inner {
    env: Environment<'static>,
    /// The body template's name (its path as written), if any.
    body: Option<String>,
    subject: bool,
    /// The sources, so a reload can tell whether anything changed.
    sources: (Option<String>, Option<String>),
}

impl PartialEq for Templates {
    fn eq(&self, other: &Self) -> bool {
        self.0.body == other.0.body && self.0.sources == other.0.sources
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("body", &self.0.body)
            .field("subject", &self.0.subject)
            .finish()
    }
}

/// A filter that breaks Markdown links, mentions and autolinks.
fn markdown_escape(s: &str) -> String {
    defuse_markdown(s)
}

fn slack_escape(s: &str) -> String {
    escape_slack(s)
}

/// `truncate(n)`: at most `n` characters, ending with `…` when cut.
fn truncate_filter(s: &str, n: usize) -> String {
    truncate(s, n)
}

/// `clean(n=200)`: one line, control and bidi characters removed.
fn clean_filter(s: &str, n: Option<usize>) -> String {
    clean(s, n.unwrap_or(200))
}

fn environment(escape: Escape) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    // `alert.urgency.value` on an event whose alert could not be fetched is
    // empty, not an error: templates see sparse alerts all the time.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(move |name| match (name, escape) {
        (SUBJECT, _) => AutoEscape::None,
        (_, Escape::Json) => AutoEscape::Json,
        (_, Escape::Html) => AutoEscape::Html,
    });
    env.add_filter("markdown_escape", markdown_escape);
    env.add_filter("slack_escape", slack_escape);
    env.add_filter("truncate", truncate_filter);
    env.add_filter("clean", clean_filter);
    env
}

/// `path:line: message` for a template error.
fn describe(e: &minijinja::Error, fallback_name: &str) -> String {
    let name = e.name().unwrap_or(fallback_name);
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(line) => format!("{name}:{line}: {what}"),
        None => format!("{name}: {what}"),
    }
}

impl Templates {
    /// Compiles a body template (its source, named `shown` in errors: the
    /// path as configured) and/or a subject template. Errors name the file
    /// and line.
    pub fn compile(
        body: Option<(&str, &str)>,
        subject: Option<&str>,
        escape: Escape,
    ) -> Result<Templates, String> {
        let mut env = environment(escape);
        let mut sources = (None, None);
        let mut body_name = None;
        if let Some((shown, source)) = body {
            let source = source.to_owned();
            env.add_template_owned(shown.to_owned(), source.clone())
                .map_err(|e| describe(&e, shown))?;
            check_names(&env, shown)?;
            sources.0 = Some(source);
            body_name = Some(shown.to_owned());
        }
        if let Some(subject) = subject {
            env.add_template_owned(SUBJECT, subject.to_owned())
                .map_err(|e| describe(&e, SUBJECT))?;
            check_names(&env, SUBJECT)?;
            sources.1 = Some(subject.to_owned());
        }
        Ok(Templates(Arc::new(Inner {
            env,
            body: body_name,
            subject: subject.is_some(),
            sources,
        })))
    }

    pub fn has_body(&self) -> bool {
        self.0.body.is_some()
    }

    /// Renders the body template, if there is one.
    pub fn body(&self, ctx: &serde_json::Value) -> Option<Result<String, String>> {
        let name = self.0.body.as_deref()?;
        Some(self.render(name, ctx))
    }

    /// Renders the subject template, if there is one, as one clean line.
    pub fn subject(&self, ctx: &serde_json::Value) -> Option<Result<String, String>> {
        if !self.0.subject {
            return None;
        }
        Some(self.render(SUBJECT, ctx).map(|s| clean(&s, 250)))
    }

    fn render(&self, name: &str, ctx: &serde_json::Value) -> Result<String, String> {
        let tmpl = self
            .0
            .env
            .get_template(name)
            .map_err(|e| describe(&e, name))?;
        let over = Cell::new(false);
        let mut out = Capped {
            buf: Vec::new(),
            over: &over,
        };
        let result = tmpl.render_captured_to(
            minijinja::Value::from(minijinja::value::Serde(ctx)),
            &mut out,
        );
        if over.get() {
            return Err(format!(
                "{name}: the rendered output exceeds {} KiB",
                MAX_OUTPUT / 1024
            ));
        }
        match result {
            Ok(_) => String::from_utf8(out.buf).map_err(|_| format!("{name}: output is not UTF-8")),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(format!(
                "{name}: the template did too much work (fuel of {FUEL} instructions used up; a runaway loop?)"
            )),
            Err(e) => Err(describe(&e, name)),
        }
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT`].
struct Capped<'a> {
    buf: Vec<u8>,
    over: &'a Cell<bool>,
}

impl io::Write for Capped<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT {
            self.over.set(true);
            return Err(io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Unknown filters and tests are only found when rendering reaches them;
/// walk the compiled instructions so `check` finds them all up front.
fn check_names(env: &Environment<'static>, name: &str) -> Result<(), String> {
    use minijinja::machinery::{get_compiled_template, Instruction, Instructions};
    let tmpl = env.get_template(name).map_err(|e| describe(&e, name))?;
    let compiled = get_compiled_template(&tmpl);
    let mut lists: Vec<&Instructions> = vec![&compiled.instructions];
    lists.extend(compiled.blocks.values());
    for list in lists {
        let mut idx = 0u32;
        while let Some(instr) = list.get(idx) {
            let (what, unknown, probe) = match instr {
                Instruction::ApplyFilter(f, ..) => ("filter", *f, format!("none|{f}")),
                Instruction::PerformTest(t, ..) => ("test", *t, format!("none is {t}")),
                _ => {
                    idx += 1;
                    continue;
                }
            };
            let known = match env.compile_expression_owned(probe) {
                Ok(expr) => !matches!(
                    expr.eval(()).map_err(|e| e.kind()),
                    Err(ErrorKind::UnknownFilter | ErrorKind::UnknownTest)
                ),
                Err(_) => true,
            };
            if !known {
                let line = list
                    .get_line(idx)
                    .map(|l| format!(":{l}"))
                    .unwrap_or_default();
                return Err(format!("{name}{line}: unknown {what} {unknown:?}"));
            }
            idx += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(text: &str) -> Result<Templates, String> {
        Templates::compile(Some(("card.json", text)), None, Escape::Json)
    }

    #[test]
    fn values_are_json_literals() {
        let t = compile(r#"{"text": {{ message.headline }}, "n": {{ message.facts|length }}}"#)
            .unwrap();
        let out = t
            .body(&json!({"message": {"headline": "a \"quoted\" <b>", "facts": [1, 2]}}))
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, json!({"text": "a \"quoted\" <b>", "n": 2}));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = compile("{\n\"a\": {{ message.headline }},\n\"b\": {% if %}\n}").unwrap_err();
        assert!(e.starts_with("card.json:3: syntax error"), "{e}");
    }

    #[test]
    fn unknown_filters_and_tests_are_found_before_rendering() {
        let e = compile("{% if false %}\n{{ x|nope }}\n{% endif %}").unwrap_err();
        assert_eq!(e, "card.json:2: unknown filter \"nope\"");
        let e = compile("{\n{% if x is nope %}{% endif %}}").unwrap_err();
        assert_eq!(e, "card.json:2: unknown test \"nope\"");
        assert!(compile("{{ x|markdown_escape|truncate(3)|tojson }}{{ x is defined }}").is_ok());
    }

    #[test]
    fn loops_run_out_of_fuel() {
        let t = compile(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let e = t.body(&json!({})).unwrap().unwrap_err();
        assert!(e.contains("fuel"), "{e}");
    }

    #[test]
    fn output_size_is_capped() {
        let t = compile(r#"{% for i in range(100) %}{{ "x" * 10000 }}{% endfor %}"#).unwrap();
        let e = t.body(&json!({})).unwrap().unwrap_err();
        assert!(e.contains("exceeds 256 KiB"), "{e}");
    }

    #[test]
    fn html_escaping_and_subjects() {
        let t = Templates::compile(
            Some(("mail.html", "<p>{{ message.headline }}</p>")),
            Some("[{{ urgency.display|default('none') }}] {{ message.headline }}\nnext"),
            Escape::Html,
        )
        .unwrap();
        let ctx = json!({"message": {"headline": "<script>x</script>"}});
        assert_eq!(
            t.body(&ctx).unwrap().unwrap(),
            "<p>&lt;script&gt;x&lt;&#x2f;script&gt;</p>"
        );
        assert_eq!(
            t.subject(&ctx).unwrap().unwrap(),
            "[none] <script>x</script> next"
        );
    }
}
