//! Local mode's secrets. They sign tokens only on a developer's machine (and in the
//! checked-in example events); a deployment has its own. They live here, in the dev kit,
//! so that no deployed binary carries them.

pub const LOCAL_JWT_SECRET: &str = "billwire-local-development-secret-not-for-production";
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_billwire_local_development";
