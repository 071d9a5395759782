//! The `api_tokens` table on PostgreSQL: the same rows and rules as SQLite's
//! (`store::sqlite::tokens`): digests only, one active token per name, revoked rows kept.

use deadpool_postgres::Pool;

use super::super::tokens::{ActiveToken, TokenRecord};
use super::super::StoreError;
use crate::auth::Scope;

/// Stores a new token; [`StoreError::TokenNameTaken`] when an active token has this name.
pub async fn insert_token(
    pool: &Pool,
    name: &str,
    scope: Scope,
    digest: &[u8; 32],
    now_ms: i64,
) -> Result<i64, StoreError> {
    let client = pool.get().await?;
    let inserted = client
        .query_opt(
            "INSERT INTO api_tokens (name, scope, digest, created_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) WHERE revoked_at_ms IS NULL DO NOTHING
             RETURNING id",
            &[&name, &scope.as_str(), &digest.as_slice(), &now_ms],
        )
        .await?;
    inserted.map(|row| row.try_get(0)).transpose()?.ok_or_else(|| StoreError::TokenNameTaken { name: name.to_owned() })
}

/// Every token ever made, oldest first.
pub async fn list_tokens(pool: &Pool) -> Result<Vec<TokenRecord>, StoreError> {
    let client = pool.get().await?;
    let rows =
        client.query("SELECT id, name, scope, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY id", &[]).await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get(0)?;
            let scope = Scope::parse(row.try_get(2)?).ok_or(StoreError::CorruptToken { id })?;
            Ok(TokenRecord {
                id,
                name: row.try_get(1)?,
                scope,
                created_at_ms: row.try_get(3)?,
                revoked_at_ms: row.try_get(4)?,
            })
        })
        .collect()
}

/// Revokes the active token named `name_or_id` (a name, or a row id); how many were.
pub async fn revoke_token(pool: &Pool, name_or_id: &str, now_ms: i64) -> Result<usize, StoreError> {
    let id: Option<i64> = name_or_id.parse().ok();
    let client = pool.get().await?;
    let revoked = client
        .execute(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE revoked_at_ms IS NULL AND (name = $2 OR id = $3)",
            &[&now_ms, &name_or_id, &id],
        )
        .await?;
    Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
}

/// The digests and scopes of every token not revoked.
pub async fn active_tokens(pool: &Pool) -> Result<Vec<ActiveToken>, StoreError> {
    let client = pool.get().await?;
    let statement =
        client.prepare_cached("SELECT id, digest, scope FROM api_tokens WHERE revoked_at_ms IS NULL").await?;
    let mut tokens = Vec::new();
    for row in client.query(&statement, &[]).await? {
        let id: i64 = row.try_get(0)?;
        let digest: [u8; 32] = row.try_get::<_, &[u8]>(1)?.try_into().map_err(|_| StoreError::CorruptToken { id })?;
        let scope = Scope::parse(row.try_get(2)?).ok_or(StoreError::CorruptToken { id })?;
        tokens.push(ActiveToken { digest, scope });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::schema;
    use crate::store::postgres::test_cluster::fresh_database;

    #[tokio::test]
    async fn a_token_is_listed_without_its_digest_and_revoked_by_name_or_id() {
        let pool = schema::pool(&fresh_database().await).expect("pool");
        schema::migrate(&pool).await.expect("schema");
        let first = insert_token(&pool, "soc", Scope::Read, &[1; 32], 10).await.expect("insert");
        insert_token(&pool, "envoy", Scope::Ingest, &[2; 32], 11).await.expect("insert");
        let taken = insert_token(&pool, "soc", Scope::Read, &[3; 32], 12).await;
        assert!(matches!(taken, Err(StoreError::TokenNameTaken { .. })), "{taken:?}");
        assert_eq!(active_tokens(&pool).await.expect("active").len(), 2);

        assert_eq!(revoke_token(&pool, "soc", 20).await.expect("revoke"), 1);
        assert_eq!(revoke_token(&pool, &first.to_string(), 21).await.expect("again"), 0, "already revoked");
        let active = active_tokens(&pool).await.expect("active");
        assert_eq!((active.len(), active[0].scope), (1, Scope::Ingest));
        assert_eq!(list_tokens(&pool).await.expect("list")[0].revoked_at_ms, Some(20));
        insert_token(&pool, "soc", Scope::Read, &[4; 32], 30).await.expect("name reusable after revocation");
    }
}
