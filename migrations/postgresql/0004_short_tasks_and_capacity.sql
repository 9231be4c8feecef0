-- Short tasks and the Apify capacity governor. A batch now goes
--   queued -> starting (a task starts its Apify run) -> running (at Apify; no task holds it)
--   -> finished (Apify says the run ended) -> storing (a task streams its dataset) -> succeeded | failed
-- and is stored chunk by chunk with its tally and dataset offset, so a task can hand it back
-- between chunks. apify_capacity is the one row that counts the account's runs for every worker.

alter table scrape_batches drop constraint if exists scrape_batches_status_check;
alter table scrape_batches add constraint scrape_batches_status_check check (status in
    ('queued', 'starting', 'running', 'finished', 'storing', 'succeeded', 'failed', 'cancelled'));
alter table scrape_batches add column if not exists not_before timestamptz;
alter table scrape_batches add column if not exists failures integer not null default 0;
alter table scrape_batches add column if not exists run_status text;
alter table scrape_batches add column if not exists run_started_at timestamptz;
alter table scrape_batches add column if not exists run_checked_at timestamptz;
alter table scrape_batches add column if not exists run_cost_usd numeric(14, 6) not null default 0;
alter table scrape_batches add column if not exists cost_settled boolean not null default false;
alter table scrape_batches add column if not exists webhook_token_hash text;
alter table scrape_batches add column if not exists items_read integer not null default 0;
alter table scrape_batches add column if not exists male_count integer not null default 0;
alter table scrape_batches add column if not exists female_count integer not null default 0;
alter table scrape_batches add column if not exists unknown_count integer not null default 0;

-- The few batches not at rest: what the governor counts and the clock looks after.
create index if not exists scrape_batches_moving on scrape_batches (status, job_id)
    where status in ('starting', 'running', 'finished', 'storing');
create index if not exists scrape_batches_queued on scrape_batches (job_id, batch_index)
    where status = 'queued';
drop index if exists scrape_batches_status;

create table if not exists apify_capacity (
    id                 integer primary key check (id = 1),
    account_cap        integer,
    lowered_cap        integer,
    lowered_until      timestamptz,
    limits_checked_at  timestamptz,
    updated_at         timestamptz not null default now()
);
insert into apify_capacity (id) values (1) on conflict do nothing;
alter table apify_capacity enable row level security;

-- Job-end callbacks are found from Postgres when their message was lost; attempts are counted here.
alter table scrape_jobs add column if not exists callback_attempts integer not null default 0;
alter table scrape_jobs add column if not exists callback_checked_at timestamptz;
