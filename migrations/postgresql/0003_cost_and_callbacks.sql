-- Cost control (a budget per job, the Apify usage of each batch rolled into its job) and
-- job-end callbacks (the URL, and when the signed summary was delivered). Safe to run twice.

alter table scrape_jobs add column if not exists max_cost_usd numeric(14, 6)
    check (max_cost_usd is null or max_cost_usd > 0);
alter table scrape_jobs add column if not exists cost_usd numeric(14, 6) not null default 0;
alter table scrape_jobs add column if not exists budget_exhausted boolean not null default false;
alter table scrape_jobs add column if not exists callback_url text;
alter table scrape_jobs add column if not exists callback_delivered_at timestamptz;
alter table scrape_jobs add column if not exists callback_error text;

alter table scrape_batches add column if not exists cost_usd numeric(14, 6) not null default 0;
