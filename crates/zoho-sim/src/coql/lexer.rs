//! Tokens of a COQL query, with 1-based line/column for SYNTAX_ERROR details.

use super::CoqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: keyword or API name (keywords are matched by the parser,
    /// so that a field may share a keyword's spelling when quoted).
    Word(String),
    /// A single-quoted string, `''` already unescaped.
    Str(String),
    /// A bare number's source text.
    Num(String),
    Comma,
    LParen,
    RParen,
    Dot,
    Star,
    Hash,
    Minus,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// The source text, for `details.near`.
    pub text: String,
    pub line: usize,
    pub column: usize,
}

impl Token {
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub fn error(&self) -> CoqlError {
        let near = if self.tok == Tok::Eof { "" } else { self.text.as_str() };
        CoqlError::syntax(self.line, self.column, near)
    }
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, CoqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        let start = i;
        let (tline, tcol) = (line, col);
        let tok = if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(CoqlError::syntax(tline, tcol, &chars[start..].iter().collect::<String>())),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    // A backslash-escaped quote is not COQL; reject it rather
                    // than let it end the string where the client did not
                    // mean it to.
                    Some('\\') if chars.get(i + 1) == Some(&'\'') => {
                        return Err(CoqlError::syntax(
                            tline,
                            tcol,
                            &chars[start..(i + 2).min(chars.len())].iter().collect::<String>(),
                        ));
                    }
                    Some(&ch) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if chars.get(i).is_some_and(|d| d.is_ascii_alphabetic() || *d == '_') {
                return Err(CoqlError::syntax(tline, tcol, &chars[start..=i].iter().collect::<String>()));
            }
            Tok::Num(chars[start..i].iter().collect())
        } else {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                ('!', Some('=')) => (Tok::Ne, 2),
                ('<', Some('=')) => (Tok::Le, 2),
                ('>', Some('=')) => (Tok::Ge, 2),
                ('<', _) => (Tok::Lt, 1),
                ('>', _) => (Tok::Gt, 1),
                ('=', _) => (Tok::Eq, 1),
                (',', _) => (Tok::Comma, 1),
                ('(', _) => (Tok::LParen, 1),
                (')', _) => (Tok::RParen, 1),
                ('.', _) => (Tok::Dot, 1),
                ('*', _) => (Tok::Star, 1),
                ('#', _) => (Tok::Hash, 1),
                ('-', _) => (Tok::Minus, 1),
                _ => return Err(CoqlError::syntax(tline, tcol, &c.to_string())),
            };
            i += len;
            tok
        };
        let text: String = chars[start..i].iter().collect();
        if line == tline {
            col += i - start;
        } else {
            // A string spanning lines: the column restarts after its last newline.
            col = 1 + text.len() - text.rfind('\n').map_or(0, |p| p + 1);
        }
        out.push(Token {
            tok,
            text,
            line: tline,
            column: tcol,
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        text: String::new(),
        line,
        column: col,
    });
    Ok(out)
}
