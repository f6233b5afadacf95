-- Billwire's billing core: tenants, users, plans, payments, invoices, and the event outbox.
-- Money is bigint minor units plus an ISO 4217 currency code; never floats.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    currency    char(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'customer')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- An email is unique within its account, case-insensitively.
CREATE UNIQUE INDEX users_account_email_key ON users (account_id, lower(email));
CREATE INDEX users_email_idx ON users (lower(email));
CREATE INDEX users_account_role_idx ON users (account_id, role, created_at DESC, id DESC);

CREATE TABLE plans (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    monthly_price  bigint NOT NULL CHECK (monthly_price > 0),
    yearly_price   bigint NOT NULL CHECK (yearly_price > 0),
    currency       char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_account_name_key ON plans (account_id, lower(name));

CREATE TABLE payments (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id),
    customer_id      uuid NOT NULL REFERENCES users (id),
    plan_id          uuid NOT NULL REFERENCES plans (id),
    plan_name        text NOT NULL,
    billing_cycle    text NOT NULL CHECK (billing_cycle IN ('monthly', 'yearly')),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_method   text NOT NULL,
    status           text NOT NULL CHECK (status IN
                         ('requires_confirmation', 'succeeded', 'failed', 'canceled', 'refunded')),
    failure_code     text,
    failure_message  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_account_created_idx ON payments (account_id, created_at DESC, id DESC);
CREATE INDEX payments_customer_created_idx ON payments (customer_id, created_at DESC, id DESC);

-- Invoice numbers are gap-free per account: the counter is bumped in the invoice's own
-- transaction, so a rolled-back invoice rolls its number back too.
CREATE TABLE invoice_counters (
    account_id   uuid PRIMARY KEY REFERENCES accounts (id),
    last_number  bigint NOT NULL
);

CREATE TABLE invoices (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    customer_id     uuid NOT NULL REFERENCES users (id),
    number          text NOT NULL CHECK (number ~ '^INV-[0-9]{6,}$'),
    status          text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal        bigint NOT NULL CHECK (subtotal >= 0),
    total           bigint NOT NULL CHECK (total >= 0),
    memo            text CHECK (length(memo) <= 2000),
    due_date        date,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finalized_at    timestamptz,
    paid_at         timestamptz,
    voided_at       timestamptz,
    UNIQUE (account_id, number)
);
CREATE INDEX invoices_account_created_idx ON invoices (account_id, created_at DESC, id DESC);
CREATE INDEX invoices_customer_created_idx ON invoices (customer_id, created_at DESC, id DESC);

CREATE TABLE invoice_lines (
    invoice_id   uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position     int NOT NULL CHECK (position >= 0),
    description  text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity     bigint NOT NULL CHECK (quantity > 0),
    unit_amount  bigint NOT NULL CHECK (unit_amount >= 0),
    amount       bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (invoice_id, position)
);

-- The outbox. `id` is the global delivery order. No foreign keys on purpose: the event
-- insert runs while holding the outbox lock (see record_event), and it must never wait
-- for a row lock another transaction holds.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  uuid NOT NULL,
    user_id     uuid,
    type        text NOT NULL CHECK (type IN
                    ('order_created', 'payment_received', 'invoice_created', 'order_updated')),
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_account_idx ON events (account_id, id);
CREATE INDEX events_user_idx ON events (user_id, id) WHERE user_id IS NOT NULL;

-- Appends one event and wakes listeners; call it as the last statement before COMMIT.
--
-- Gap-free reading (DESIGN.md invariant 3): the transaction-scoped advisory lock is taken
-- before the id is drawn and held until commit or rollback, so event ids become visible
-- strictly in id order. A reader doing `id > cursor` can therefore never skip an id that
-- commits later. NOTIFY already serialises the commits of notifying transactions, so the
-- lock costs little on top; its payload is only the id (a wake-up, never the data).
CREATE FUNCTION record_event(
    p_account_id uuid,
    p_user_id uuid,
    p_type text,
    p_data jsonb,
    p_created_at timestamptz DEFAULT now()
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7394461024938240001);
    INSERT INTO events (account_id, user_id, type, data, created_at)
    VALUES (p_account_id, p_user_id, p_type, p_data, p_created_at)
    RETURNING id INTO new_id;
    PERFORM pg_notify('billwire_events', new_id::text);
    RETURN new_id;
END;
$$;

-- Stripe-style idempotency: the first response is stored in the same transaction as the
-- write it describes.
CREATE TABLE idempotency_keys (
    scope          text NOT NULL,
    key            text NOT NULL,
    request_hash   bytea NOT NULL,
    status         smallint NOT NULL,
    response_body  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Provider webhook deliveries already applied, so a redelivery changes nothing.
CREATE TABLE webhook_deliveries (
    provider_event_id  text PRIMARY KEY,
    payment_id         uuid NOT NULL REFERENCES payments (id),
    received_at        timestamptz NOT NULL DEFAULT now()
);
