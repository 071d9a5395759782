//! The tamper-evident trail. Every stored event is a link of ONE hash chain in sequence
//! order ([`link`], over the [`canonical`] form of the event, which ingest writes straight
//! from the typed event: [`canonical_typed`]); the collector signs
//! [`checkpoint`]s of the chain's head with an Ed25519 key ([`signing`]); `GET /audit`
//! serves each event with its link spliced in ([`served`]). `crate::verify` checks all of
//! it from a database copy or through the API; the store writes it (`store::sqlite::chain_store`, `store::postgres::chain`).

pub mod canonical;
pub mod canonical_typed;
pub mod checkpoint;
pub mod link;
pub mod served;
pub mod signing;
