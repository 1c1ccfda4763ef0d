//! Quoting shared by every engine we generate SQL for (Postgres and DataFusion agree on these).

/// Quotes an identifier: `order` becomes `"order"`, `a"b` becomes `"a""b"`. Quoting always keeps
/// case and makes reserved words safe, so names from rule files are never spliced raw.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal with doubled single quotes (standard SQL; Postgres with
/// `standard_conforming_strings`, DataFusion's default dialect).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Removes trailing semicolons and whitespace so a user query can be wrapped as a subquery.
pub fn strip_trailing_semicolons(sql: &str) -> &str {
    sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(quote_ident("total_amount"), "\"total_amount\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
        assert_eq!(strip_trailing_semicolons("select 1 ;\n "), "select 1");
    }
}
