//! Recursive-descent parser for COQL's SELECT:
//!
//! ```text
//! query   := SELECT items FROM module [#cvid] WHERE cond [ORDER BY order] [LIMIT [off ,] n] [OFFSET m]
//! cond    := term [(AND|OR) term]          -- a third operand needs parentheses
//! term    := '(' cond ')' | field predicate
//! ```

use serde_json::json;

use super::lexer::{tokenize, Tok, Token};
use super::{check_shape, CmpOp, Cond, CoqlError, LikePattern, Literal, OrderItem, Query, SelectItem, DEFAULT_LIMIT};

/// Words that cannot be bare field names; quote such a field in SELECT and
/// ORDER BY (`'External'` in Zoho's own advice).
const RESERVED: &[&str] = &[
    "select", "from", "where", "and", "or", "not", "in", "is", "null", "like", "between", "order", "by", "asc", "desc", "limit", "offset", "group", "as",
    "true", "false",
];

/// Aggregate names; Zoho spells them in upper case only.
const AGGREGATES: &[&str] = &["COUNT", "SUM", "MIN", "MAX", "AVG"];

pub fn parse(select_query: &str) -> Result<Query, CoqlError> {
    let tokens = tokenize(select_query)?;
    let mut p = Parser { tokens, pos: 0 };
    let q = p.query()?;
    check_shape(&q)?;
    Ok(q)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), CoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.peek().error())
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), CoqlError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.peek().error())
        }
    }

    fn query(&mut self) -> Result<Query, CoqlError> {
        self.expect_kw("select")?;
        let select = self.select_items()?;
        self.expect_kw("from")?;
        let (module, cvid) = self.module()?;
        if !self.eat_kw("where") {
            // Zoho reports the missing WHERE before looking at the module.
            if self.peek().tok == Tok::Eof || ["order", "limit", "offset", "group"].iter().any(|k| self.peek().is_kw(k)) {
                return Err(CoqlError::clause("where"));
            }
            return Err(self.peek().error());
        }
        let filter = self.cond()?;
        let mut group_by = Vec::new();
        if self.eat_kw("group") {
            self.expect_kw("by")?;
            loop {
                group_by.push(self.field_ref(false)?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let field = self.field_ref(true)?;
                let ascending = if self.eat_kw("desc") {
                    false
                } else {
                    self.eat_kw("asc");
                    true
                };
                order_by.push(OrderItem { field, ascending });
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let (mut limit, mut offset) = (DEFAULT_LIMIT, 0);
        if self.eat_kw("limit") {
            let first = self.count()?;
            if self.eat(&Tok::Comma) {
                offset = first;
                limit = self.count()?;
            } else {
                limit = first;
            }
        }
        if self.eat_kw("offset") {
            offset = self.count()?;
        }
        if self.peek().tok != Tok::Eof {
            return Err(self.peek().error());
        }
        Ok(Query {
            select,
            module,
            cvid,
            filter,
            order_by,
            group_by,
            limit,
            offset,
        })
    }

    fn select_items(&mut self) -> Result<Vec<SelectItem>, CoqlError> {
        let mut items = Vec::new();
        loop {
            let t = self.peek().clone();
            let item = match &t.tok {
                Tok::Word(w) if AGGREGATES.contains(&w.as_str()) && self.peek_at(1).tok == Tok::LParen => {
                    self.pos += 2;
                    let field = self.field_ref(true)?;
                    self.expect(&Tok::RParen)?;
                    SelectItem::Aggregate { func: w.clone(), field }
                }
                _ => SelectItem::Field(self.field_ref(true)?),
            };
            if self.peek().is_kw("as") {
                return Err(CoqlError::invalid(
                    "invalid query formed",
                    json!({"clause": "select", "reason": "aliases are not supported by the simulator"}),
                ));
            }
            items.push(item);
            if !self.eat(&Tok::Comma) {
                return Ok(items);
            }
        }
    }

    fn module(&mut self) -> Result<(String, Option<String>), CoqlError> {
        let t = self.next();
        let name = match t.tok {
            Tok::Word(w) if !is_reserved(&w) => w,
            _ => return Err(t.error()),
        };
        if !self.eat(&Tok::Hash) {
            return Ok((name, None));
        }
        let t = self.next();
        match t.tok {
            Tok::Num(n) => Ok((name, Some(n))),
            _ => Err(t.error()),
        }
    }

    /// A field: a bare (possibly dotted) API name, or, where `quoted_ok`, a
    /// single-quoted one.
    fn field_ref(&mut self, quoted_ok: bool) -> Result<String, CoqlError> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) if quoted_ok && !s.is_empty() => Ok(s),
            Tok::Word(w) if !is_reserved(&w) => {
                let mut path = w;
                while self.peek().tok == Tok::Dot {
                    self.pos += 1;
                    let seg = self.next();
                    match seg.tok {
                        Tok::Word(w) => {
                            path.push('.');
                            path.push_str(&w);
                        }
                        _ => return Err(seg.error()),
                    }
                }
                Ok(path)
            }
            _ => Err(t.error()),
        }
    }

    fn count(&mut self) -> Result<usize, CoqlError> {
        let t = self.next();
        match &t.tok {
            Tok::Num(n) if !n.contains('.') => n.parse().map_err(|_| t.error()),
            _ => Err(t.error()),
        }
    }

    fn cond(&mut self) -> Result<Cond, CoqlError> {
        let left = self.term()?;
        let cond = if self.eat_kw("and") {
            Cond::And(Box::new(left), Box::new(self.term()?))
        } else if self.eat_kw("or") {
            Cond::Or(Box::new(left), Box::new(self.term()?))
        } else {
            return Ok(left);
        };
        // `A and B and C` is ambiguous to Zoho: it wants explicit pairs.
        if self.peek().is_kw("and") || self.peek().is_kw("or") {
            return Err(self.peek().error());
        }
        Ok(cond)
    }

    fn term(&mut self) -> Result<Cond, CoqlError> {
        if self.eat(&Tok::LParen) {
            let c = self.cond()?;
            self.expect(&Tok::RParen)?;
            return Ok(c);
        }
        let field = self.field_ref(false)?;
        let t = self.next();
        let op = match t.tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            return Ok(Cond::Cmp {
                field,
                op,
                value: self.literal()?,
            });
        }
        if t.is_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Cond::Null { field, negated });
        }
        let negated = t.is_kw("not");
        let t = if negated { self.next() } else { t };
        if t.is_kw("in") {
            self.expect(&Tok::LParen)?;
            let mut values = vec![self.literal()?];
            while self.eat(&Tok::Comma) {
                values.push(self.literal()?);
            }
            self.expect(&Tok::RParen)?;
            Ok(Cond::In { field, values, negated })
        } else if t.is_kw("between") {
            let low = self.literal()?;
            self.expect_kw("and")?;
            let high = self.literal()?;
            Ok(Cond::Between { field, low, high, negated })
        } else if t.is_kw("like") {
            let p = self.next();
            match p.tok {
                Tok::Str(s) => Ok(Cond::Like {
                    field,
                    pattern: LikePattern::parse(&s),
                    negated,
                }),
                _ => Err(p.error()),
            }
        } else {
            Err(t.error())
        }
    }

    fn literal(&mut self) -> Result<Literal, CoqlError> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(Literal::Str(s)),
            Tok::Num(n) => Ok(Literal::Num(n)),
            Tok::Minus => {
                let n = self.next();
                match n.tok {
                    Tok::Num(n) => Ok(Literal::Num(format!("-{n}"))),
                    _ => Err(n.error()),
                }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            _ => Err(t.error()),
        }
    }
}

fn is_reserved(w: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
}
