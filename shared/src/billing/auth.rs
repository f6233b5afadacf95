//! Who is calling: access tokens (JWT, HS256 pinned), refresh tokens (opaque, single-use,
//! rotated), password hashing (argon2id), login, refresh and logout.

use super::values::{Email, Password};
use crate::platform::config::JwtSettings;
use crate::platform::database::Client;
use crate::platform::error::{Error, Kind, Result};
use crate::store::outbox::Audience;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and manages the whole account.
    Admin,
    /// Sees its own orders, invoices and events.
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Customer => "customer",
        }
    }

    pub fn from_db(s: &str) -> Result<Role, Error> {
        match s {
            "admin" => Ok(Role::Admin),
            "customer" => Ok(Role::Customer),
            other => Err(Error::internal(format!(
                "unknown role {other:?} in database"
            ))),
        }
    }
}

/// The authenticated caller, as proven by a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::forbidden(
                "this action needs an admin of the account",
            ))
        }
    }

    /// The customer whose rows this caller may see: `None` for an admin (the whole account),
    /// `Some(self)` for a customer.
    pub fn customer_scope(&self) -> Option<Uuid> {
        (!self.is_admin()).then_some(self.user_id)
    }
}

impl From<&Principal> for Audience {
    fn from(p: &Principal) -> Self {
        Audience::Caller {
            account_id: p.account_id,
            customer: p.customer_scope(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    acc: Uuid,
    role: Role,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Signs and verifies access tokens. Built once per process.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: JwtSettings,
}

/// Clock skew tolerated on `exp` and `iat`, in seconds.
const LEEWAY_SECONDS: i64 = 30;

impl Tokens {
    pub fn new(settings: JwtSettings) -> Self {
        // Only HS256 is accepted: a token whose header names another algorithm (including
        // "none") fails before its signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS as u64;
        Tokens {
            encoding: EncodingKey::from_secret(&settings.secret),
            decoding: DecodingKey::from_secret(&settings.secret),
            validation,
            settings,
        }
    }

    /// Issues an access token; returns it with its lifetime in seconds.
    pub fn issue(&self, who: &Principal) -> Result<(String, u64)> {
        let now = Utc::now().timestamp();
        let ttl = self.settings.access_token_ttl.as_secs();
        Ok((self.issue_at(who, now, now + ttl as i64)?, ttl))
    }

    /// A token issued at `iat` that expires at `exp` (unix seconds). The API only issues
    /// short-lived ones through [`Tokens::issue`]; this exists for local example events.
    pub fn issue_at(&self, who: &Principal, iat: i64, exp: i64) -> Result<String> {
        let claims = Claims {
            sub: who.user_id,
            acc: who.account_id,
            role: who.role,
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat,
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Principal> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                Error::unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "access token has expired; log in again",
                    _ => "access token is invalid",
                })
            })?;
        let claims = data.claims;
        if claims.iat > Utc::now().timestamp() + LEEWAY_SECONDS {
            return Err(Error::unauthorized("access token is invalid"));
        }
        Ok(Principal {
            user_id: claims.sub,
            account_id: claims.acc,
            role: claims.role,
        })
    }
}

/// Hashes a password with argon2id (19 MiB, 2 passes: OWASP's recommendation), off the
/// async runtime's threads.
pub async fn hash_password(password: &Password) -> Result<String> {
    let pw = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| Error::internal(e.to_string()))
}

/// Checks a password against a stored hash in constant time, off the runtime's threads.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (pw, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, verified when the email is unknown so that a login
/// for a missing user costs the same time as one with a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(Uuid::new_v4().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub const COLUMNS: &'static str = "id, account_id, email, name, role, created_at";

    pub fn from_row(row: &tokio_postgres::Row) -> Result<User> {
        Ok(User {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            role: Role::from_db(row.try_get("role")?)?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The account a user belongs to, as `me` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub currency: String,
}

/// A user with their account: what `GET /api/v1/auth/me` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    pub account: AccountSummary,
}

/// The caller and their account; 401 if the user no longer exists.
pub async fn me(db: &impl GenericClient, who: &Principal) -> Result<Me> {
    let row = db
        .query_opt(
            "SELECT u.id, u.account_id, u.email, u.name, u.role, u.created_at,
                    a.name AS account_name, a.slug AS account_slug, a.currency AS account_currency
               FROM users u JOIN accounts a ON a.id = u.account_id
              WHERE u.id = $1 AND u.account_id = $2",
            &[&who.user_id, &who.account_id],
        )
        .await?
        .ok_or_else(|| Error::unauthorized("this user no longer exists"))?;
    let user = User::from_row(&row)?;
    let account = AccountSummary {
        id: user.account_id,
        name: row.try_get("account_name")?,
        slug: row.try_get("account_slug")?,
        currency: row.try_get("account_currency")?,
    };
    Ok(Me { user, account })
}

pub struct Credentials {
    pub email: Email,
    pub password: String,
    pub account: Option<String>,
}

/// Checks credentials and issues an access token. An email used in several accounts needs
/// the account's slug; the password is checked before that is revealed.
pub async fn login(
    tokens: &Tokens,
    db: &impl GenericClient,
    creds: &Credentials,
) -> Result<TokenResponse> {
    let rows = db
        .query(
            "SELECT u.id, u.account_id, u.role, u.password_hash
               FROM users u JOIN accounts a ON a.id = u.account_id
              WHERE lower(u.email) = lower($1) AND ($2::text IS NULL OR a.slug = $2)
              ORDER BY u.created_at
              LIMIT 20",
            &[&creds.email.as_str(), &creds.account],
        )
        .await?;
    let mut matched = Vec::new();
    for row in &rows {
        let hash: String = row.try_get("password_hash")?;
        if verify_password(&creds.password, &hash).await {
            matched.push(Principal {
                user_id: row.try_get("id")?,
                account_id: row.try_get("account_id")?,
                role: Role::from_db(row.try_get("role")?)?,
            });
        }
    }
    if rows.is_empty() {
        verify_password(&creds.password, decoy_hash()).await;
    }
    let who =
        match matched.as_slice() {
            [who] => *who,
            [] => return Err(Error::unauthorized("email or password is wrong")),
            _ => return Err(Error::bad_request(
                "account_required",
                "this email belongs to several accounts; pass \"account\" with the account's slug",
            )),
        };
    session(tokens, db, &who, Uuid::now_v7()).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// Trade it for a new pair at `POST /api/v1/auth/refresh`; it works once.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

/// A bearer secret (WebSocket tickets, refresh tokens): 32 random bytes, hex.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored of a bearer secret: its SHA-256, never the secret.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// An access token and a fresh refresh token of `family` (one family per login).
async fn session(
    tokens: &Tokens,
    db: &impl GenericClient,
    who: &Principal,
    family: Uuid,
) -> Result<TokenResponse> {
    let (access_token, expires_in) = tokens.issue(who)?;
    let refresh_token = format!("rt_{}", new_secret());
    let ttl = tokens.settings.refresh_token_ttl.as_secs();
    db.execute(
        "INSERT INTO refresh_tokens (token_hash, family, user_id, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        &[
            &secret_hash(&refresh_token),
            &family,
            &who.user_id,
            &(ttl as f64),
        ],
    )
    .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in,
        refresh_token,
        refresh_expires_in: ttl,
    })
}

/// Revokes every refresh token of the login `token` belongs to (nothing if unknown).
pub async fn logout(db: &impl GenericClient, token: &str) -> Result<()> {
    db.execute(
        "UPDATE refresh_tokens SET revoked_at = now()
          WHERE revoked_at IS NULL
            AND family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)",
        &[&secret_hash(token)],
    )
    .await?;
    Ok(())
}

/// What `refresh` found for a presented token.
enum Presented {
    Valid(Principal, Uuid),
    /// Already traded in: its family is revoked.
    Reused,
    Invalid,
}

/// Trades a refresh token for a new pair. The token is spent; presenting a spent token
/// again revokes every token of its login (whoever holds a copy loses it), and all
/// refusals look alike.
pub async fn refresh(tokens: &Tokens, db: &mut Client, token: &str) -> Result<TokenResponse> {
    let refused = || {
        Error::new(
            Kind::Unauthorized,
            "invalid_refresh_token",
            "the refresh token is unknown, expired, revoked or already used; log in again",
        )
    };
    let hash = secret_hash(token);
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT r.family, r.used_at IS NOT NULL AS used,
                    r.revoked_at IS NULL AND r.expires_at > now() AS live,
                    u.id AS user_id, u.account_id, u.role
               FROM refresh_tokens r JOIN users u ON u.id = r.user_id
              WHERE r.token_hash = $1
              FOR UPDATE OF r",
            &[&hash],
        )
        .await?;
    let presented = match row {
        None => Presented::Invalid,
        Some(row) if !row.try_get::<_, bool>("live")? => Presented::Invalid,
        Some(row) if row.try_get::<_, bool>("used")? => {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = now()
                  WHERE family = $1 AND revoked_at IS NULL",
                &[&row.try_get::<_, Uuid>("family")?],
            )
            .await?;
            Presented::Reused
        }
        Some(row) => Presented::Valid(
            Principal {
                user_id: row.try_get("user_id")?,
                account_id: row.try_get("account_id")?,
                role: Role::from_db(row.try_get("role")?)?,
            },
            row.try_get("family")?,
        ),
    };
    match presented {
        Presented::Invalid => Err(refused()),
        Presented::Reused => {
            tx.commit().await?;
            tracing::warn!("a spent refresh token was presented again; its login is revoked");
            Err(refused())
        }
        Presented::Valid(who, family) => {
            tx.execute(
                "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
                &[&hash],
            )
            .await?;
            let pair = session(tokens, &tx, &who, family).await?;
            tx.commit().await?;
            Ok(pair)
        }
    }
}

/// Housekeeping: refresh tokens past their expiry, a batch at a time. Spent ones stay until
/// they expire, so a replay is still recognised.
pub async fn purge_expired_refresh_tokens(db: &impl GenericClient) -> Result<u64> {
    crate::platform::database::delete_batch(
        db,
        "refresh_tokens",
        "expires_at < now() - interval '1 hour'",
    )
    .await
}
