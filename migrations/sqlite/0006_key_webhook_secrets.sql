-- A job-end callback signing secret per API key; mirrors migrations/postgresql.
alter table api_keys add column webhook_secret text;

alter table api_keys add column default_max_cost_usd numeric;
alter table api_keys add column max_cost_usd_limit numeric;
alter table api_keys add column monthly_cap_usd numeric;
