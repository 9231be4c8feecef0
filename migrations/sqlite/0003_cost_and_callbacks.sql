-- Cost control and job-end callbacks; mirrors migrations/postgresql.

alter table scrape_jobs add column max_cost_usd numeric check (max_cost_usd is null or max_cost_usd > 0);
alter table scrape_jobs add column cost_usd numeric not null default 0;
alter table scrape_jobs add column budget_exhausted boolean not null default 0;
alter table scrape_jobs add column callback_url text;
alter table scrape_jobs add column callback_delivered_at datetime;
alter table scrape_jobs add column callback_error text;

alter table scrape_batches add column cost_usd numeric not null default 0;
