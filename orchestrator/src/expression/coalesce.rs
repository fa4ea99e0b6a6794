//! Pre-translation of the Pebble operators minijinja lacks into minijinja syntax.
//!
//! Pebble has three that minijinja reads differently or not at all:
//!
//! * `c ? a : b`, its ternary (lowest precedence, right-associative), becomes
//!   `(a if c else b)`;
//! * `a equals b` becomes `a == b`;
//! * `a contains b` (precedence between `and` and the comparisons) becomes `(b in a)`.
//!
//! Kestra adds two binary operators to Pebble (`io.kestra.core.runners.pebble.Extension`):
//!
//! * `a ?? b` (`NullCoalescingExpression`): `a` unless it is undefined or null, else `b`;
//! * `a ??? b` (`UndefinedCoalescingExpression`): `a` unless it is undefined, else `b`.
//!
//! Both bind tighter than every other binary operator (precedence 120, above the filter pipe),
//! and both *catch* a missing attribute anywhere in `a`'s path, so
//! `{{ outputs.missing.value ?? 'x' }}` is `x` even though `outputs.missing` is undefined.
//! The right operand is evaluated normally, so `{{ missing ?? missing2 }}` is still an error.
//!
//! minijinja has neither operator, so before compiling we rewrite each chain
//! `a ?? b ?? c` into a conditional expression:
//!
//! ```text
//! (__kestra_nav(a) if __kestra_nav(a) is __kestra_present else (… else c))
//! ```
//!
//! where `__kestra_nav(root, 'attr', key, …)` walks the path in Rust and yields undefined instead
//! of failing. Everything outside `{{ … }}` / `{% … %}` (text, comments, raw blocks) and every
//! string literal is copied untouched, so a `??` inside a string never changes meaning.

use std::borrow::Cow;

/// Function that walks an attribute path, yielding undefined instead of failing.
pub(crate) const NAV_FUNCTION: &str = "__kestra_nav";
/// Test that is true when a value is neither undefined nor none (the `??` condition).
pub(crate) const PRESENT_TEST: &str = "__kestra_present";

/// Rewrites every Pebble-only operator in `template`; returns it borrowed when there is none.
pub(crate) fn translate(template: &str) -> Cow<'_, str> {
    if !template.contains('?') && !template.contains("equals") && !template.contains("contains") {
        return Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len() + 32);
    let bytes = template.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'#' => {
                // Comments end at the first `#}`; nothing inside is code.
                i = template[i + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
            }
            b'{' | b'%' => {
                let is_tag = bytes[i + 1] == b'%';
                let start = i + 2;
                let Some(end) = find_block_end(template, start, is_tag) else {
                    break; // unterminated: leave it to minijinja to report
                };
                let inner = &template[start..end];
                if is_tag && is_raw_tag(inner) {
                    // `{% raw %}…{% endraw %}` is copied as-is, like Kestra's RAW_PATTERN.
                    i = find_endraw(template, end + 2).unwrap_or(bytes.len());
                    continue;
                }
                if inner.contains('?') || inner.contains("equals") || inner.contains("contains") {
                    let translated = translate_expression(inner);
                    if translated.trim() != inner.trim() {
                        out.push_str(&template[copied..start]);
                        out.push_str(&translated);
                        copied = end;
                    }
                }
                i = end + 2;
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(template);
    }
    out.push_str(&template[copied..]);
    Cow::Owned(out)
}

/// Finds the byte offset of the closing `}}` / `%}` of a block starting at `start`, skipping
/// string literals and nested brackets (a map literal `{'a': {'b': 1}}` contains `}}`).
pub(crate) fn find_block_end(src: &str, start: usize, is_tag: bool) -> Option<usize> {
    let bytes = src.as_bytes();
    let close = if is_tag { b'%' } else { b'}' };
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_string(bytes, i),
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            c if c == close && depth == 0 && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Returns the index just past the string literal opening at `i`.
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

fn is_raw_tag(inner: &str) -> bool {
    inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// Returns the index just past the `{% endraw %}` tag found at or after `from`.
fn find_endraw(src: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(p) = src[at..].find("{%") {
        let start = at + p + 2;
        let end = src[start..].find("%}")? + start;
        let name =
            src[start..end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if name == "endraw" {
            return Some(end + 2);
        }
        at = end + 2;
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ident,
    Literal,
    Open(u8),
    Close,
    Dot,
    /// `??` (true) or `???` (false: only undefined coalesces).
    Coalesce(bool),
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'\'' | b'"' => {
                i = skip_string(bytes, i);
                Kind::Literal
            }
            b'0'..=b'9' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                    // a decimal point followed by a digit belongs to the number
                    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                }
                Kind::Literal
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                Kind::Ident
            }
            b'?' if bytes.get(i + 1) == Some(&b'?') => {
                if bytes.get(i + 2) == Some(&b'?') {
                    i += 3;
                    Kind::Coalesce(false)
                } else {
                    i += 2;
                    Kind::Coalesce(true)
                }
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Kind::Open(c)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            // Two-character operators stay one token, so that they are copied glued.
            b'=' | b'!' | b'<' | b'>' | b'*' | b'/'
                if matches!(
                    &bytes[i..(i + 2).min(bytes.len())],
                    b"==" | b"!=" | b"<=" | b">=" | b"**" | b"//"
                ) =>
            {
                i += 2;
                Kind::Other
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        tokens.push(Token {
            kind,
            start,
            end: i,
        });
    }
    tokens
}

/// Words that are operators, not operands, in Pebble and minijinja expressions and tags.
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "and"
            | "or"
            | "not"
            | "is"
            | "in"
            | "if"
            | "else"
            | "elif"
            | "for"
            | "set"
            | "as"
            | "with"
            | "equals"
            | "contains"
    )
}

/// An operand: a primary (name, literal, bracketed group) followed by postfix accesses.
struct Operand {
    /// Plain translation of the whole operand.
    text: String,
    /// The part evaluated normally when made safe (everything up to the last call).
    base: String,
    /// Path steps after `base`, already rendered as minijinja expressions.
    steps: Vec<String>,
}

impl Operand {
    /// The operand rewritten so that a missing attribute yields undefined instead of failing.
    fn safe(&self) -> String {
        let mut s = format!("{NAV_FUNCTION}({}", self.base);
        for step in &self.steps {
            s.push_str(", ");
            s.push_str(step);
        }
        s.push(')');
        s
    }
}

struct Translator<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    /// For each opening token, the index of its matching closing token.
    closing: Vec<usize>,
}

fn translate_expression(src: &str) -> String {
    let tokens = tokenize(src);
    let mut closing = vec![usize::MAX; tokens.len()];
    let mut stack = Vec::new();
    for (idx, t) in tokens.iter().enumerate() {
        match t.kind {
            Kind::Open(_) => stack.push(idx),
            Kind::Close => {
                if let Some(open) = stack.pop() {
                    closing[open] = idx;
                }
            }
            _ => {}
        }
    }
    if !stack.is_empty() {
        // Unbalanced brackets: a syntax error minijinja will report with a better message.
        return src.to_owned();
    }
    let t = Translator {
        src,
        tokens,
        closing,
    };
    let body = t.level(0, t.tokens.len());
    // Keep whitespace-control markers glued to the delimiters.
    let lead = if src.starts_with(['-', '+']) { "" } else { " " };
    let trail = if src.ends_with(['-', '+']) { "" } else { " " };
    format!("{lead}{}{trail}", body.trim())
}

impl Translator<'_> {
    fn text(&self, idx: usize) -> &str {
        let t = self.tokens[idx];
        &self.src[t.start..t.end]
    }

    /// The tokens of `lo..hi` at its own bracket depth (a bracketed group is skipped).
    fn top_level(&self, lo: usize, hi: usize) -> Vec<usize> {
        let mut found = Vec::new();
        let mut i = lo;
        while i < hi {
            found.push(i);
            i = match self.tokens[i].kind {
                Kind::Open(_) => self.closing[i] + 1,
                _ => i + 1,
            };
        }
        found
    }

    /// Whether token `idx` is the operator `op` (a word after a `.` is an attribute).
    fn is_op(&self, idx: usize, op: &str) -> bool {
        matches!(self.tokens[idx].kind, Kind::Other | Kind::Ident)
            && self.text(idx) == op
            && !(idx > 0 && self.tokens[idx - 1].kind == Kind::Dot)
    }

    /// Translates tokens `lo..hi`, all at the same bracket depth.
    fn level(&self, lo: usize, hi: usize) -> String {
        let top = self.top_level(lo, hi);
        if top.iter().any(|&i| self.is_op(i, "?")) {
            return self.ternaries(lo, hi, &top);
        }
        if top.iter().any(|&i| self.is_op(i, "contains")) {
            return self.containment(&top, hi);
        }
        self.coalescing(lo, hi)
    }

    /// `c ? a : b` → `(a if c else b)`, in each comma-separated part of `lo..hi`. The
    /// condition starts after the part's last `:` (a map key), `=` or tag keyword before the
    /// `?`; nested ternaries in the branches are translated by recursion.
    fn ternaries(&self, lo: usize, hi: usize, top: &[usize]) -> String {
        let mut parts = Vec::new();
        let mut start = lo;
        for &i in top.iter().chain(std::iter::once(&hi)) {
            if i == hi || self.is_op(i, ",") {
                parts.push(self.ternary(start, i));
                start = i + 1;
            }
        }
        parts.join(", ")
    }

    fn ternary(&self, lo: usize, hi: usize) -> String {
        let top = self.top_level(lo, hi);
        let Some(q) = top.iter().position(|&i| self.is_op(i, "?")) else {
            return self.level(lo, hi);
        };
        // The `:` that closes this `?`, counting nested ones.
        let mut depth = 0;
        let mut colon = None;
        for &i in &top[q + 1..] {
            if self.is_op(i, "?") {
                depth += 1;
            } else if self.is_op(i, ":") {
                if depth == 0 {
                    colon = Some(i);
                    break;
                }
                depth -= 1;
            }
        }
        let Some(colon) = colon else {
            // No `:`: not a ternary; minijinja reports the stray `?`.
            return self.coalescing(lo, hi);
        };
        let cond_start = top[..q]
            .iter()
            .rev()
            .find(|&&i| {
                self.is_op(i, ":")
                    || self.is_op(i, "=")
                    || matches!(self.text(i), "if" | "elif" | "set" | "in")
            })
            .map_or(lo, |&i| i + 1);
        let prefix = if cond_start > lo {
            format!("{} ", self.level(lo, cond_start))
        } else {
            String::new()
        };
        let q = top[q];
        format!(
            "{prefix}({} if {} else {})",
            self.level(q + 1, colon),
            self.level(cond_start, q),
            self.ternary(colon + 1, hi)
        )
    }

    /// `a contains b` → `(b in a)`, within each `and` / `or` operand; a leading `not` stays
    /// outside, as Pebble's `not` binds looser than `contains`.
    fn containment(&self, top: &[usize], hi: usize) -> String {
        let mut out = Vec::new();
        let mut start = 0;
        let bounds: Vec<usize> = top
            .iter()
            .enumerate()
            .filter(|&(_, &i)| self.is_op(i, "and") || self.is_op(i, "or"))
            .map(|(k, _)| k)
            .collect();
        for end in bounds.iter().copied().chain(std::iter::once(top.len())) {
            let part = &top[start..end];
            let lo = part.first().copied().unwrap_or(hi);
            let part_hi = top.get(end).copied().unwrap_or(hi);
            match part.iter().position(|&i| self.is_op(i, "contains")) {
                Some(c) => {
                    let nots = part[..c]
                        .iter()
                        .take_while(|&&i| self.is_op(i, "not"))
                        .count();
                    let left_lo = part.get(nots).copied().unwrap_or(lo);
                    let mut s = "not ".repeat(nots);
                    s.push_str(&format!(
                        "({} in {})",
                        self.level(part[c] + 1, part_hi),
                        self.level(left_lo, part[c])
                    ));
                    out.push(s);
                }
                None if lo < part_hi => out.push(self.level(lo, part_hi)),
                None => {}
            }
            if let Some(&op) = top.get(end) {
                out.push(self.text(op).to_owned());
            }
            start = end + 1;
        }
        out.join(" ")
    }

    /// `??` / `???` chains, and `equals`, in tokens `lo..hi` (no ternary, no `contains`).
    fn coalescing(&self, lo: usize, hi: usize) -> String {
        enum Piece {
            Operand(Operand),
            Coalesce(bool),
            Raw(String),
        }
        let mut pieces = Vec::new();
        let mut i = lo;
        while i < hi {
            let tok = self.tokens[i];
            match tok.kind {
                Kind::Coalesce(null_too) => {
                    pieces.push(Piece::Coalesce(null_too));
                    i += 1;
                }
                // A unary minus right after `??` belongs to the right operand.
                Kind::Other
                    if self.text(i) == "-"
                        && matches!(pieces.last(), Some(Piece::Coalesce(_)))
                        && i + 1 < hi =>
                {
                    match self.operand(i + 1, hi) {
                        Some((mut op, next)) => {
                            op.text = format!("-{}", op.text);
                            op.base = op.text.clone();
                            op.steps.clear();
                            pieces.push(Piece::Operand(op));
                            i = next;
                        }
                        None => {
                            pieces.push(Piece::Raw("-".into()));
                            i += 1;
                        }
                    }
                }
                _ => match self.operand(i, hi) {
                    Some((op, next)) => {
                        pieces.push(Piece::Operand(op));
                        i = next;
                    }
                    None => {
                        let text = match self.text(i) {
                            "equals" => "==",
                            other => other,
                        };
                        pieces.push(Piece::Raw(text.to_owned()));
                        i += 1;
                    }
                },
            }
        }

        let mut out: Vec<String> = Vec::new();
        let mut p = 0;
        while p < pieces.len() {
            // A chain is operand (op operand)+.
            let mut end = p;
            while matches!(pieces.get(end), Some(Piece::Operand(_)))
                && matches!(pieces.get(end + 1), Some(Piece::Coalesce(_)))
                && matches!(pieces.get(end + 2), Some(Piece::Operand(_)))
            {
                end += 2;
            }
            if end == p {
                out.push(match &pieces[p] {
                    Piece::Operand(op) => op.text.clone(),
                    Piece::Coalesce(true) => "??".into(),
                    Piece::Coalesce(false) => "???".into(),
                    Piece::Raw(r) => r.clone(),
                });
                p += 1;
                continue;
            }
            // Right-nested conditional; every operand but the last is made safe.
            let Piece::Operand(last) = &pieces[end] else {
                unreachable!()
            };
            let mut expr = last.text.clone();
            let mut k = end;
            while k > p {
                let (Piece::Operand(left), Piece::Coalesce(null_too)) =
                    (&pieces[k - 2], &pieces[k - 1])
                else {
                    unreachable!()
                };
                let safe = left.safe();
                let test = if *null_too { PRESENT_TEST } else { "defined" };
                expr = format!("({safe} if {safe} is {test} else {expr})");
                k -= 2;
            }
            out.push(expr);
            p = end + 1;
        }
        out.join(" ")
    }

    /// Parses an operand starting at token `i`; returns it and the index after it.
    fn operand(&self, i: usize, hi: usize) -> Option<(Operand, usize)> {
        let tok = self.tokens[i];
        let (mut text, mut next) = match tok.kind {
            Kind::Ident if !is_keyword(self.text(i)) => (self.text(i).to_owned(), i + 1),
            Kind::Literal => (self.text(i).to_owned(), i + 1),
            Kind::Open(c) => {
                let close = self.closing[i];
                let inner = self.level(i + 1, close);
                let closer = match c {
                    b'(' => ')',
                    b'[' => ']',
                    _ => '}',
                };
                (format!("{}{inner}{closer}", c as char), close + 1)
            }
            _ => return None,
        };
        let mut base = text.clone();
        let mut steps = Vec::new();
        while next < hi {
            let t = self.tokens[next];
            match t.kind {
                Kind::Dot
                    if next + 1 < hi
                        && matches!(self.tokens[next + 1].kind, Kind::Ident | Kind::Literal) =>
                {
                    let name = self.text(next + 1);
                    text.push('.');
                    text.push_str(name);
                    steps.push(if name.as_bytes()[0].is_ascii_digit() {
                        name.to_owned()
                    } else {
                        format!("'{name}'")
                    });
                    next += 2;
                }
                Kind::Open(b'[') => {
                    let close = self.closing[next];
                    let inner = self.level(next + 1, close);
                    text.push_str(&format!("[{inner}]"));
                    steps.push(format!("({inner})"));
                    next = close + 1;
                }
                Kind::Open(b'(') => {
                    let close = self.closing[next];
                    let inner = self.level(next + 1, close);
                    text.push_str(&format!("({inner})"));
                    // A call is evaluated normally; only what follows it is made safe.
                    base = text.clone();
                    steps.clear();
                    next = close + 1;
                }
                _ => break,
            }
        }
        Some((Operand { text, base, steps }, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_without_coalescing_are_borrowed() {
        assert!(matches!(
            translate("{{ a | default('b') }}"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn question_marks_inside_strings_and_text_are_untouched() {
        let t = "what ?? {{ 'a ?? b' ~ \"c??\" }} {# x ?? y #}";
        assert_eq!(translate(t), t);
    }

    #[test]
    fn raw_blocks_are_untouched() {
        let t = "{% raw %}{{ a ?? b }}{% endraw %}";
        assert_eq!(translate(t), t);
    }

    #[test]
    fn simple_chain_becomes_a_conditional() {
        assert_eq!(
            translate("{{ inputs.x ?? 'd' }}"),
            "{{ (__kestra_nav(inputs, 'x') if __kestra_nav(inputs, 'x') is __kestra_present else 'd') }}"
        );
    }

    #[test]
    fn triple_question_mark_tests_definedness_only() {
        assert_eq!(
            translate("{{ a ??? b }}"),
            "{{ (__kestra_nav(a) if __kestra_nav(a) is defined else b) }}"
        );
    }

    #[test]
    fn calls_stay_outside_the_safe_path() {
        assert_eq!(
            translate("{{ fromJson(x).a[k] ?? 1 }}"),
            "{{ (__kestra_nav(fromJson(x), 'a', (k)) if __kestra_nav(fromJson(x), 'a', (k)) is __kestra_present else 1) }}"
        );
    }

    #[test]
    fn coalescing_inside_arguments_and_tags_is_translated() {
        let t = translate("{% if f(a ?? -1) > 0 -%}");
        assert_eq!(
            t,
            "{% if f((__kestra_nav(a) if __kestra_nav(a) is __kestra_present else -1)) > 0 -%}"
        );
    }

    #[test]
    fn map_literals_containing_closing_braces_are_one_block() {
        let t = translate("{{ {'a': {'b': x ?? 1}} }}");
        assert!(t.contains("__kestra_nav(x)"), "{t}");
        assert!(t.ends_with("}} }}"), "{t}");
    }

    #[test]
    fn ternary_becomes_a_conditional() {
        assert_eq!(
            translate("{{ taskrun.attemptsCount == 1 ? 'first' : 'again' }}"),
            "{{ ('first' if taskrun.attemptsCount == 1 else 'again') }}"
        );
    }

    #[test]
    fn nested_ternaries_associate_to_the_right() {
        assert_eq!(
            translate("{{ a ? b ? 1 : 2 : c ? 3 : 4 }}"),
            "{{ ((1 if b else 2) if a else (3 if c else 4)) }}"
        );
    }

    #[test]
    fn ternaries_in_arguments_map_values_and_assignments() {
        assert_eq!(
            translate("{{ f(a ? 1 : 2, x) }}"),
            "{{ f((1 if a else 2), x) }}"
        );
        assert_eq!(
            translate("{{ {'k': a ? 1 : 2} }}"),
            "{{ {'k' : (1 if a else 2)} }}"
        );
        assert_eq!(
            translate("{% set v = a ? 1 : 2 %}"),
            "{% set v = (1 if a else 2) %}"
        );
    }

    #[test]
    fn ternary_and_coalescing_together() {
        assert_eq!(
            translate("{{ inputs.x ?? false ? 'y' : 'n' }}"),
            "{{ ('y' if (__kestra_nav(inputs, 'x') if __kestra_nav(inputs, 'x') is __kestra_present else false) else 'n') }}"
        );
    }

    #[test]
    fn equals_and_contains_become_minijinja_operators() {
        assert_eq!(translate("{{ a equals 'b' }}"), "{{ a == 'b' }}");
        assert_eq!(
            translate("{{ inputs.list contains 'x' and not inputs.s contains 'y' }}"),
            "{{ ('x' in inputs.list) and not ('y' in inputs.s) }}"
        );
    }

    #[test]
    fn operators_are_copied_glued() {
        assert_eq!(
            translate("{{ a >= 1 ? a ** 2 // 3 : a != 0 }}"),
            "{{ (a ** 2 // 3 if a >= 1 else a != 0) }}"
        );
    }

    #[test]
    fn operator_words_in_strings_and_attributes_are_untouched() {
        let t = "{{ 'a ? b : c contains equals' ~ x.contains }}";
        assert_eq!(translate(t), t);
    }
}
