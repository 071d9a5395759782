//! The `api_tokens` table: bearer tokens made by `audit-collector token create`, each with
//! a name and one scope, stored only as the SHA-256 digest of the secret. Listing never
//! returns a digest; revoking keeps the row (with its revocation time) so `token list`
//! still shows who had access.

use rusqlite::{params, Connection, OptionalExtension};

use crate::auth::Scope;

use super::super::tokens::{ActiveToken, TokenRecord};
use super::super::StoreError;

/// Stores a new token; fails with [`StoreError::TokenNameTaken`] when an active token
/// already has this name.
pub fn insert_token(
    conn: &Connection,
    name: &str,
    scope: Scope,
    digest: &[u8; 32],
    now_ms: i64,
) -> Result<i64, StoreError> {
    let taken: Option<i64> = conn
        .query_row("SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at_ms IS NULL", [name], |row| row.get(0))
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::TokenNameTaken { name: name.to_owned() });
    }
    conn.execute(
        "INSERT INTO api_tokens (name, scope, digest, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![name, scope.as_str(), digest.as_slice(), now_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Every token ever made, oldest first.
pub fn list_tokens(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let mut select =
        conn.prepare("SELECT id, name, scope, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY id")?;
    let rows = select.query_map([], |row| {
        let scope: String = row.get(2)?;
        Ok((row.get(0)?, row.get(1)?, scope, row.get(3)?, row.get(4)?))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (id, name, scope, created_at_ms, revoked_at_ms) = row?;
        let scope = Scope::parse(&scope).ok_or_else(|| StoreError::CorruptToken { id })?;
        records.push(TokenRecord { id, name, scope, created_at_ms, revoked_at_ms });
    }
    Ok(records)
}

/// Revokes the active token named `name_or_id` (a name, or a row id); returns how many
/// tokens were revoked (0 when none matched).
pub fn revoke_token(conn: &Connection, name_or_id: &str, now_ms: i64) -> Result<usize, StoreError> {
    let id: Option<i64> = name_or_id.parse().ok();
    let revoked = conn.execute(
        "UPDATE api_tokens SET revoked_at_ms = ?1
         WHERE revoked_at_ms IS NULL AND (name = ?2 OR id = ?3)",
        params![now_ms, name_or_id, id],
    )?;
    Ok(revoked)
}

/// The digests and scopes of every token not revoked.
pub fn active_tokens(conn: &Connection) -> Result<Vec<ActiveToken>, StoreError> {
    let mut select = conn.prepare_cached("SELECT id, digest, scope FROM api_tokens WHERE revoked_at_ms IS NULL")?;
    let rows =
        select.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, String>(2)?)))?;
    let mut tokens = Vec::new();
    for row in rows {
        let (id, digest, scope) = row?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| StoreError::CorruptToken { id })?;
        let scope = Scope::parse(&scope).ok_or(StoreError::CorruptToken { id })?;
        tokens.push(ActiveToken { digest, scope });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::open_for_writing;

    #[test]
    fn a_token_is_listed_without_its_digest_and_revoked_by_name_or_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let first = insert_token(&conn, "soc", Scope::Read, &[1; 32], 10).expect("insert");
        insert_token(&conn, "envoy", Scope::Ingest, &[2; 32], 11).expect("insert");
        assert!(matches!(
            insert_token(&conn, "soc", Scope::Read, &[3; 32], 12),
            Err(StoreError::TokenNameTaken { .. })
        ));
        assert_eq!(active_tokens(&conn).expect("active").len(), 2);

        assert_eq!(revoke_token(&conn, "soc", 20).expect("revoke"), 1);
        assert_eq!(revoke_token(&conn, &first.to_string(), 21).expect("again"), 0, "already revoked");
        let active = active_tokens(&conn).expect("active");
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].scope, Scope::Ingest);
        let listed = list_tokens(&conn).expect("list");
        assert_eq!(listed[0].revoked_at_ms, Some(20));
        // A revoked name can be used again, e.g. for the rotated token.
        insert_token(&conn, "soc", Scope::Read, &[4; 32], 30).expect("name reusable after revocation");
    }
}
