-- A job-end callback signing secret per API key, so no tenant can sign another's callbacks.
alter table api_keys add column if not exists webhook_secret text;

-- Spending limits per key: a default and a maximum for a job's maxCostUsd, and a cap on what
-- the key's jobs may spend in a calendar month (null: the server's defaults).
alter table api_keys add column if not exists default_max_cost_usd numeric(14, 6);
alter table api_keys add column if not exists max_cost_usd_limit numeric(14, 6);
alter table api_keys add column if not exists monthly_cap_usd numeric(14, 6);
