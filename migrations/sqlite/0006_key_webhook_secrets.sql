-- A job-end callback signing secret per API key; mirrors migrations/postgresql.
alter table api_keys add column webhook_secret text;
