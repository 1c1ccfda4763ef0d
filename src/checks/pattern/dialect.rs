//! The regular expressions `pattern` accepts: a small dialect that PostgreSQL (its advanced
//! regular expressions, operator `~`) and DataFusion (Rust's `regex` crate, operator `~`) read
//! the same way. A pattern is checked and rewritten once, at load time, into text both engines
//! are sent; a construct either engine lacks, or reads differently, is refused with the reason
//! and what to write instead, rather than let one rule mean two things.
//!
//! Accepted: literal characters; `.` (any character except a newline; sent as `[^\n]`, since
//! PostgreSQL's `.` also matches a newline and Rust's does not); anchors `^` and `$` (of the
//! whole value); groups `( )` and `(?: )`; alternation `|`; quantifiers `*`, `+`, `?`,
//! `{n}`, `{n,}`, `{n,m}` (n, m ≤ 255, PostgreSQL's limit), each optionally lazy (`*?`: the
//! check only asks whether a value matches, which laziness does not change); bracket
//! expressions `[abc]`, `[^abc]` with ranges between ASCII characters; the escapes `\t \n \r
//! \f \v`, a backslash before punctuation (`\.`, `\-`, `\\`, ...) for that character; and the
//! classes `\d` `\s` `\w` (with `\D` `\S` `\W` outside brackets), sent as their ASCII sets
//! (`[0-9]`, `[ \t\n\r\f\v]`, `[A-Za-z0-9_]`), because Rust reads them as Unicode classes and
//! PostgreSQL by the server's locale.
//!
//! Refused: POSIX classes (`[[:alpha:]]`, locale-dependent in PostgreSQL), `\b` (backspace in
//! PostgreSQL, a word boundary in Rust), other letter escapes, lookaround and inline flags
//! (`(?=`, `(?i)`), back references, ranges with a non-ASCII end, `[` or `&&` inside brackets
//! (Rust nests and intersects classes there), a `]` or `{` not escaped where it would be
//! literal, and bounds above 255.

/// Why a pattern was refused: the message says what and where, `help` how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    pub help: String,
}

fn refuse(at: usize, what: impl Into<String>, help: impl Into<String>) -> Refused {
    Refused {
        message: format!("{} at character {}", what.into(), at + 1),
        help: help.into(),
    }
}

/// Largest `{n,m}` bound PostgreSQL accepts (`DUPMAX`).
const MOST_REPEATS: u32 = 255;

const DIGIT: &str = "0-9";
const SPACE: &str = " \\t\\n\\r\\f\\v";
const WORD: &str = "A-Za-z0-9_";

/// `pattern` in the portable dialect, as the text both engines are sent; or why not.
pub fn portable(pattern: &str) -> Result<String, Refused> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // Whether the last item can take a quantifier, and whether it already has one.
    let mut quantifiable = false;
    let mut quantified = false;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let (text, next) = escape(&chars, i)?;
                out.push_str(&text);
                i = next;
                quantifiable = true;
                quantified = false;
                continue;
            }
            '[' => {
                let (text, next) = bracket(&chars, i)?;
                out.push_str(&text);
                i = next;
                quantifiable = true;
                quantified = false;
                continue;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    if chars.get(i + 2) != Some(&':') {
                        return Err(refuse(
                            i,
                            "`(?` (lookaround, inline flags, named groups) is not in the dialect",
                            "use `(...)` or `(?:...)`; for case-insensitive matching list both \
                             cases, e.g. `[Aa]`",
                        ));
                    }
                    out.push_str("(?:");
                    i += 3;
                } else {
                    out.push('(');
                    i += 1;
                }
                depth += 1;
                quantifiable = false;
                continue;
            }
            ')' => {
                if depth == 0 {
                    return Err(refuse(i, "unmatched `)`", "escape it as `\\)`"));
                }
                depth -= 1;
                out.push(')');
                quantifiable = true;
                quantified = false;
            }
            '|' => {
                out.push('|');
                quantifiable = false;
            }
            '^' | '$' => {
                out.push(c);
                quantifiable = false;
            }
            '.' => {
                out.push_str("[^\\n]");
                quantifiable = true;
                quantified = false;
            }
            '*' | '+' | '?' | '{' => {
                let next = if c == '{' {
                    let (text, next) = bound(&chars, i)?;
                    check_quantifiable(i, quantifiable, quantified)?;
                    out.push_str(&text);
                    next
                } else if c == '?' && quantified && out.ends_with(['*', '+', '?', '}']) {
                    // Lazy form of the quantifier just written; `??` included.
                    if out.ends_with("??") || lazy_already(&out) {
                        return Err(refuse(i, "a quantifier repeated", "remove one of them"));
                    }
                    out.push('?');
                    i += 1;
                    continue;
                } else {
                    check_quantifiable(i, quantifiable, quantified)?;
                    out.push(c);
                    i + 1
                };
                quantified = true;
                i = next;
                continue;
            }
            '}' => {
                return Err(refuse(i, "a `}` without its `{`", "escape it as `\\}`"));
            }
            ']' => {
                return Err(refuse(i, "a `]` without its `[`", "escape it as `\\]`"));
            }
            _ => {
                out.push(c);
                quantifiable = true;
                quantified = false;
            }
        }
        i += 1;
    }
    if depth > 0 {
        return Err(refuse(
            chars.len().saturating_sub(1),
            "a `(` is never closed",
            "add the missing `)`",
        ));
    }
    Ok(out)
}

/// Whether `out` ends in a lazy quantifier (`*?`, `+?`, `}?`) already.
fn lazy_already(out: &str) -> bool {
    let mut tail = out.chars().rev();
    tail.next() == Some('?') && matches!(tail.next(), Some('*' | '+' | '}'))
}

fn check_quantifiable(at: usize, quantifiable: bool, quantified: bool) -> Result<(), Refused> {
    if quantified {
        return Err(refuse(
            at,
            "a quantifier on a quantifier (possessive and nested repeats differ between engines)",
            "wrap the repeated part in a group: `(a+)*`",
        ));
    }
    if !quantifiable {
        return Err(refuse(
            at,
            "a quantifier with nothing to repeat",
            "escape it (`\\*`, `\\+`, `\\?`, `\\{`) to match the character itself",
        ));
    }
    Ok(())
}

/// `{n}`, `{n,}`, `{n,m}` from `chars[at] == '{'`: its text and the index after it.
fn bound(chars: &[char], at: usize) -> Result<(String, usize), Refused> {
    let close = chars[at..]
        .iter()
        .position(|&c| c == '}')
        .map(|p| at + p)
        .ok_or_else(|| refuse(at, "a `{` that opens no bound", "escape it as `\\{`"))?;
    let inner: String = chars[at + 1..close].iter().collect();
    let number = |text: &str| -> Result<u32, Refused> {
        let n: u32 = text.parse().map_err(|_| {
            refuse(
                at,
                format!("`{{{inner}}}` is not a bound"),
                "write `{n}`, `{n,}` or `{n,m}`, or escape the brace as `\\{`",
            )
        })?;
        if n > MOST_REPEATS {
            return Err(refuse(
                at,
                format!("bound {n} is above {MOST_REPEATS}, PostgreSQL's limit"),
                "repeat a group instead, e.g. `(a{200}){2}`",
            ));
        }
        Ok(n)
    };
    match inner.split_once(',') {
        None => {
            number(&inner)?;
        }
        Some((low, "")) => {
            number(low)?;
        }
        Some((low, high)) => {
            if number(low)? > number(high)? {
                return Err(refuse(
                    at,
                    format!("`{{{inner}}}` has its bounds the wrong way round"),
                    "write the smaller bound first",
                ));
            }
        }
    }
    Ok((format!("{{{inner}}}"), close + 1))
}

/// What a backslash escape at `chars[at]` means: a single character (`Literal`), a class to
/// expand, or one only allowed outside brackets.
enum Escaped {
    Literal(String),
    Class(&'static str),
    Negated(&'static str),
}

fn escaped(chars: &[char], at: usize) -> Result<Escaped, Refused> {
    let Some(&c) = chars.get(at + 1) else {
        return Err(refuse(
            at,
            "a pattern cannot end in `\\`",
            "write `\\\\` to match a backslash",
        ));
    };
    Ok(match c {
        't' | 'n' | 'r' | 'f' | 'v' => Escaped::Literal(format!("\\{c}")),
        'd' => Escaped::Class(DIGIT),
        's' => Escaped::Class(SPACE),
        'w' => Escaped::Class(WORD),
        'D' => Escaped::Negated(DIGIT),
        'S' => Escaped::Negated(SPACE),
        'W' => Escaped::Negated(WORD),
        'b' => {
            return Err(refuse(
                at,
                "`\\b` is a backspace in PostgreSQL and a word boundary in Rust",
                "match the neighbouring characters instead, e.g. `(^|[^A-Za-z0-9_])`",
            ))
        }
        c if c.is_ascii_punctuation() && !matches!(c, '<' | '>') => {
            Escaped::Literal(format!("\\{c}"))
        }
        c => {
            return Err(refuse(
                at,
                format!("the escape `\\{c}` is not in the dialect"),
                "use `\\d`, `\\s`, `\\w`, `\\t`, `\\n`, or a backslash before punctuation; \
                 write other characters as themselves",
            ))
        }
    })
}

/// An escape outside brackets: its text and the index after it.
fn escape(chars: &[char], at: usize) -> Result<(String, usize), Refused> {
    let text = match escaped(chars, at)? {
        Escaped::Literal(text) => text,
        Escaped::Class(set) => format!("[{set}]"),
        Escaped::Negated(set) => format!("[^{set}]"),
    };
    Ok((text, at + 2))
}

/// A bracket expression from `chars[at] == '['`: its text and the index after it.
fn bracket(chars: &[char], at: usize) -> Result<(String, usize), Refused> {
    let mut out = String::from("[");
    let mut i = at + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    // The last single character written, for ranges.
    let mut previous: Option<char> = None;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(refuse(
                at,
                "a `[` is never closed",
                "add the missing `]`, or escape the bracket as `\\[`",
            ));
        };
        match c {
            ']' if i == first => {
                return Err(refuse(
                    i,
                    "an empty bracket expression, or a `]` first in one",
                    "escape a `]` to match as `\\]`",
                ))
            }
            ']' => {
                out.push(']');
                return Ok((out, i + 1));
            }
            '[' => {
                return Err(refuse(
                    i,
                    "`[` inside brackets (POSIX classes such as `[[:alpha:]]`, nested classes) \
                     reads differently in the two engines",
                    "list the characters, e.g. `[A-Za-z]`; escape a `[` to match as `\\[`",
                ))
            }
            '&' if chars.get(i + 1) == Some(&'&') => {
                return Err(refuse(
                    i,
                    "`&&` inside brackets is a class intersection in Rust",
                    "escape it as `\\&\\&`",
                ))
            }
            '~' if chars.get(i + 1) == Some(&'~') => {
                return Err(refuse(
                    i,
                    "`~~` inside brackets is a class difference in Rust",
                    "escape it as `\\~\\~`",
                ))
            }
            '-' if previous.is_some()
                && chars.get(i + 1).is_some_and(|&n| n != ']')
                && i > first =>
            {
                let low = previous.unwrap_or_default();
                let (high, next) = match chars[i + 1] {
                    '\\' => match escaped(chars, i + 1)? {
                        Escaped::Literal(text) => (literal_char(&text), i + 3),
                        _ => {
                            return Err(refuse(
                                i,
                                "a range cannot end in a class",
                                "put `-` last to match a hyphen",
                            ))
                        }
                    },
                    '[' => {
                        return Err(refuse(
                            i + 1,
                            "`[` inside brackets reads differently in the two engines",
                            "escape it as `\\[`",
                        ))
                    }
                    other => (other, i + 2),
                };
                if !low.is_ascii() || !high.is_ascii() {
                    return Err(refuse(
                        i,
                        format!("the range `{low}-{high}` has a non-ASCII end"),
                        "list non-ASCII characters one by one",
                    ));
                }
                if low > high {
                    return Err(refuse(
                        i,
                        format!("the range `{low}-{high}` runs backwards"),
                        "write the lower character first",
                    ));
                }
                out.push('-');
                match chars[i + 1] {
                    '\\' => out.push_str(&chars[i + 1..i + 3].iter().collect::<String>()),
                    other => out.push(other),
                }
                previous = None;
                i = next;
            }
            '-' => {
                // A hyphen that starts no range (first, last, or after a range): escaped, so
                // neither engine reads a range into it.
                out.push_str("\\-");
                previous = Some('-');
                i += 1;
            }
            '\\' => {
                match escaped(chars, i)? {
                    Escaped::Literal(text) => {
                        previous = Some(literal_char(&text));
                        out.push_str(&text);
                    }
                    Escaped::Class(set) => {
                        out.push_str(set);
                        previous = None;
                    }
                    Escaped::Negated(_) => {
                        return Err(refuse(
                            i,
                            "`\\D`, `\\S` and `\\W` cannot be used inside brackets",
                            "list what to match instead, or negate the whole bracket: `[^0-9]`",
                        ))
                    }
                }
                i += 2;
            }
            '^' => {
                // Literal here; escaped so that neither engine could read it as negation.
                out.push_str("\\^");
                previous = Some('^');
                i += 1;
            }
            c => {
                out.push(c);
                previous = Some(c);
                i += 1;
            }
        }
    }
}

/// The character an escape written as `\x` stands for.
fn literal_char(text: &str) -> char {
    match text {
        "\\t" => '\t',
        "\\n" => '\n',
        "\\r" => '\r',
        "\\f" => '\x0c',
        "\\v" => '\x0b',
        _ => text.chars().nth(1).unwrap_or('\\'),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::email(r"^[^@\s]+@[^@\s]+$", r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+$")]
    #[case::dot_is_not_newline("^a.c$", r"^a[^\n]c$")]
    #[case::digits(r"^\d{3}-\d{4}$", r"^[0-9]{3}-[0-9]{4}$")]
    #[case::word_and_negations(r"\w+\D\S\W", r"[A-Za-z0-9_]+[^0-9][^ \t\n\r\f\v][^A-Za-z0-9_]")]
    #[case::groups("(ab|cd)(?:ef)?", "(ab|cd)(?:ef)?")]
    #[case::lazy("a+?b*?c{1,2}?", "a+?b*?c{1,2}?")]
    #[case::ranges_and_hyphens("[a-z0-9_-]", r"[a-z0-9_\-]")]
    #[case::escaped_range_end(r"[!-\/]", r"[!-\/]")]
    #[case::caret_in_class("[a^]", r"[a\^]")]
    #[case::unicode_literals("^José|Zoë$", "^José|Zoë$")]
    #[case::bounds("^x{2}y{0,}z{1,255}$", "^x{2}y{0,}z{1,255}$")]
    fn accepted_patterns_are_sent_as(#[case] pattern: &str, #[case] sent: &str) {
        assert_eq!(portable(pattern).unwrap(), sent);
        regex::Regex::new(sent).expect("the text sent compiles in Rust");
    }

    #[rstest]
    #[case::posix_class("[[:alpha:]]", "`[` inside brackets")]
    #[case::backspace_or_boundary(r"\bword", "`\\b` is a backspace")]
    #[case::lookahead("a(?=b)", "`(?` (lookaround")]
    #[case::inline_flag("(?i)abc", "`(?` (lookaround")]
    #[case::back_reference(r"(a)\1", "the escape `\\1`")]
    #[case::letter_escape(r"\p{L}", "the escape `\\p`")]
    #[case::word_start(r"\<a", "the escape `\\<`")]
    #[case::intersection("[a-z&&b]", "`&&` inside brackets")]
    #[case::difference("[a-z~~b]", "`~~` inside brackets")]
    #[case::nested_repeat("a**", "a quantifier on a quantifier")]
    #[case::possessive("a++", "a quantifier on a quantifier")]
    #[case::nothing_to_repeat("*a", "nothing to repeat")]
    #[case::after_anchor("^*", "nothing to repeat")]
    #[case::big_bound("a{256}", "above 255")]
    #[case::backwards_bound("a{3,2}", "the wrong way round")]
    #[case::not_a_bound("a{x}", "is not a bound")]
    #[case::open_brace("a{", "opens no bound")]
    #[case::close_brace("a}", "a `}` without its `{`")]
    #[case::close_bracket("a]", "a `]` without its `[`")]
    #[case::bracket_first_in_class("[]a]", "a `]` first")]
    #[case::unclosed_bracket("[abc", "never closed")]
    #[case::unclosed_group("(abc", "never closed")]
    #[case::unmatched_paren("abc)", "unmatched `)`")]
    #[case::non_ascii_range("[à-ü]", "non-ASCII end")]
    #[case::backwards_range("[z-a]", "runs backwards")]
    #[case::negated_class_in_brackets(r"[\D]", "cannot be used inside brackets")]
    #[case::trailing_backslash("abc\\", "cannot end in")]
    fn constructs_that_differ_are_refused(#[case] pattern: &str, #[case] message: &str) {
        let refused = portable(pattern).unwrap_err();
        assert!(
            refused.message.contains(message),
            "{pattern}: {}",
            refused.message
        );
        assert!(!refused.help.is_empty());
    }

    #[test]
    fn a_refusal_says_where() {
        let refused = portable("ab(?=c)").unwrap_err();
        assert!(refused.message.ends_with("at character 3"), "{refused:?}");
    }
}
