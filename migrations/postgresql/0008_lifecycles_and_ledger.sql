-- Lifecycles told from facts, and money kept as a ledger. Safe to run twice.
--
-- 1. How an input account's list ended (scrape_accounts, follower_lists): complete; exhausted (the
--    actor says there are no more), private or not_found; or cut, saying what cut it (cut_by):
--    a budget, a cancel, a deletion, a failure, a quota, or the actor's per-run cap with no token
--    to go on. Only an exhausted list may serve a larger limit than it holds.
-- 2. apify_runs: every Apify run a batch may have started, from the moment it is claimed to start
--    one until what it cost is final; spend_ledger: what each run cost, append-only, read by the
--    monthly cap. Neither goes with a job that is deleted.

alter table follower_lists drop constraint if exists follower_lists_status_check;
alter table follower_lists add column if not exists cut_by text;
update follower_lists set status = 'exhausted' where status = 'short';
update follower_lists set cut_by = case status when 'capped' then 'run_cap' when 'quota' then 'quota'
                                                else 'failure' end, status = 'cut'
    where status in ('capped', 'quota', 'failed');
alter table follower_lists add constraint follower_lists_status_check check (status in
    ('pending', 'complete', 'exhausted', 'private', 'not_found', 'cut'));
alter table follower_lists drop constraint if exists follower_lists_cut_by_check;
alter table follower_lists add constraint follower_lists_cut_by_check check ((status = 'cut') = (cut_by is not null)
    and (cut_by is null or cut_by in ('budget', 'cancel', 'deletion', 'failure', 'quota', 'run_cap')));

alter table scrape_accounts drop constraint if exists scrape_accounts_status_check;
alter table scrape_accounts add column if not exists cut_by text;
update scrape_accounts set status = 'exhausted' where status = 'short';
update scrape_accounts set cut_by = case status when 'capped' then 'run_cap' when 'quota' then 'quota'
                                                 else 'failure' end, status = 'cut'
    where status in ('capped', 'quota', 'failed');
alter table scrape_accounts add constraint scrape_accounts_status_check check (status in
    ('pending', 'complete', 'exhausted', 'private', 'not_found', 'cut'));
alter table scrape_accounts drop constraint if exists scrape_accounts_cut_by_check;
alter table scrape_accounts add constraint scrape_accounts_cut_by_check check ((status = 'cut') = (cut_by is not null)
    and (cut_by is null or cut_by in ('budget', 'cancel', 'deletion', 'failure', 'quota', 'run_cap')));

create table if not exists apify_runs (
    id           bigserial primary key,
    run_id       text unique,           -- Apify's id, once known
    job_id       uuid not null,         -- no foreign key: a run and what it cost outlive the job
    batch_index  integer not null,
    attempt      integer not null,      -- the batch's attempt that started it
    api_key_id   bigint,
    status       text not null check (status in ('starting', 'running', 'ended', 'charged', 'settled', 'void')),
    charge_cap   numeric(14, 6),        -- the run's maxTotalChargeUsd
    max_items    integer,               -- the run's maxItems
    created_at   timestamptz not null,
    expires_at   timestamptz,           -- starting: looked for at Apify once this passes unrecorded
    checked_at   timestamptz,           -- running: when the poller last asked about it
    ended_at     timestamptz,
    run_status   text,                  -- Apify's, once the run ended
    cost_usd     numeric(14, 6)         -- what the ledger holds for it (the first figure, then the final one)
);
create index if not exists apify_runs_open on apify_runs (status, checked_at)
    where status in ('starting', 'running', 'ended', 'charged');
create index if not exists apify_runs_job on apify_runs (job_id, batch_index, attempt);
alter table apify_runs enable row level security;

-- When the clock last swept the account's run list for runs of ours that nobody recorded.
alter table apify_capacity add column if not exists runs_swept_at timestamptz;

create table if not exists spend_ledger (
    id           bigserial primary key,
    api_key_id   bigint,
    job_id       uuid,
    run_id       text not null,
    kind         text not null check (kind in ('run', 'settlement')),
    usd          numeric(14, 6) not null,
    recorded_at  timestamptz not null,
    unique (run_id, kind)
);
create index if not exists spend_ledger_key on spend_ledger (api_key_id, recorded_at);
alter table spend_ledger enable row level security;

create or replace function spend_ledger_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'spend_ledger is append-only: a charge is corrected by a settlement entry, never changed';
end
$$;
drop trigger if exists spend_ledger_no_change on spend_ledger;
create trigger spend_ledger_no_change before update or delete on spend_ledger
    for each row execute function spend_ledger_append_only();
drop trigger if exists spend_ledger_no_truncate on spend_ledger;
create trigger spend_ledger_no_truncate before truncate on spend_ledger
    for each statement execute function spend_ledger_append_only();

-- What batches cost so far moves into the ledger (one entry a batch), and into their jobs where it
-- was not rolled up yet (batches not ended); runs still going are registered to be charged.
do $$
begin
    if exists (select 1 from information_schema.columns
               where table_name = 'scrape_batches' and column_name = 'cost_usd') then
        insert into spend_ledger (api_key_id, job_id, run_id, kind, usd, recorded_at)
            select j.api_key_id, b.job_id, 'before-ledger:' || b.job_id || ':' || b.batch_index, 'run', b.cost_usd,
                   coalesce(b.finished_at, j.updated_at)
            from scrape_batches b join scrape_jobs j on j.job_id = b.job_id
            where b.cost_usd > 0
            on conflict do nothing;
        update scrape_jobs j set cost_usd = j.cost_usd + s.usd
            from (select job_id, sum(cost_usd) as usd from scrape_batches
                  where status not in ('succeeded', 'failed') and cost_usd > 0 group by job_id) s
            where s.job_id = j.job_id;
        insert into apify_runs (run_id, job_id, batch_index, attempt, api_key_id, status, created_at, checked_at)
            select b.apify_run_id, b.job_id, b.batch_index, b.attempts, j.api_key_id, 'running', now(), now()
            from scrape_batches b join scrape_jobs j on j.job_id = b.job_id
            where b.status in ('running', 'finished', 'storing') and b.apify_run_id is not null
            on conflict do nothing;
    end if;
end
$$;

alter table scrape_batches drop column if exists cost_usd;
alter table scrape_batches drop column if exists run_cost_usd;
alter table scrape_batches drop column if exists cost_settled;
alter table scrape_batches drop column if exists run_status;
alter table scrape_batches drop column if exists run_started_at;
