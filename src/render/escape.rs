//! Sanitizing and per-markup escaping of untrusted text.
//!
//! Backslash escapes are not reliable in Teams and Mattermost Markdown, so
//! the syntax itself is broken with an invisible WORD JOINER (U+2060): after
//! `@` (no mention), after `<` (no `<!channel>`, `<url|text>`, autolink or
//! HTML tag), and between `]` and `(` / `:` (no inline or reference link).

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

/// U+2060 WORD JOINER: invisible, not whitespace, not a word character.
const WJ: char = '\u{2060}';

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Cuts to at most `max` characters, ending with `…` when cut.
/// (Also used by renderers to fit a target's per-field limits.)
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One line of untrusted text: control and bidi-override characters gone,
/// whitespace runs collapsed, at most `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut last_space = true;
    for c in s.chars() {
        if is_bidi_control(c) || c == WJ {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            continue;
        }
        out.push(c);
        last_space = false;
        // Enough to know it will be cut; avoids copying megabytes.
        if out.len() > max * 4 + 8 {
            break;
        }
    }
    truncate(out.trim_end(), max)
}

/// Slack `mrkdwn`: escape the three control characters; `<!channel>`,
/// `<@U…>` and `<url|text>` all need a literal `<`. `@here` typed as text
/// does not notify from a webhook, but is defused anyway.
pub fn escape_slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    for c in s.chars() {
        // Slack does not render `[text](url)`, but the text may be copied
        // elsewhere that does.
        if prev == ']' && c == '(' {
            out.push(WJ);
        }
        prev = c;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                out.push(WJ);
            }
            c => out.push(c),
        }
    }
    out
}

/// Markdown targets (Teams, Mattermost): break mentions, `<…>` constructs
/// and link syntax without visibly changing the text.
pub fn defuse_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    for c in s.chars() {
        if prev == ']' && (c == '(' || c == ':' || c == '[') {
            out.push(WJ);
        }
        out.push(c);
        if c == '@' || c == '<' {
            out.push(WJ);
        }
        prev = c;
    }
    out
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_controls_and_bidi() {
        assert_eq!(
            clean("a\n\nb\r\n\tc \u{202E}evil\u{202C}", 100),
            "a b c evil"
        );
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean(&"A".repeat(100_000), 10).chars().count(), 10);
    }

    #[test]
    fn slack_escapes_control_sequences() {
        assert_eq!(
            escape_slack("<!channel> <https://evil|x> & @all"),
            "&lt;!channel&gt; &lt;https://evil|x&gt; &amp; @\u{2060}all"
        );
    }

    #[test]
    fn markdown_is_defused() {
        let d = defuse_markdown("[click](https://evil) @all <!here> [r]: http://x");
        assert!(!d.contains("](") && !d.contains("@all") && !d.contains("<!") && !d.contains("]:"));
        assert_eq!(
            d.replace(WJ, ""),
            "[click](https://evil) @all <!here> [r]: http://x"
        );
    }
}
