-- Lifecycles told from facts, and money kept as a ledger; mirrors migrations/postgresql. SQLite
-- cannot change a check constraint, so follower_lists and scrape_accounts are rebuilt (with the
-- foreign keys off, or dropping follower_lists would take its pages with it).
pragma foreign_keys = off;

create table follower_lists_new (
    id          integer primary key,
    account     text not null,
    actor_id    text not null,
    requested   integer not null,
    scraped     integer not null default 0,
    status      text not null default 'pending' check (status in
                ('pending', 'complete', 'exhausted', 'private', 'not_found', 'cut')),
    cut_by      text check ((status = 'cut') = (cut_by is not null) and (cut_by is null or cut_by in
                ('budget', 'cancel', 'deletion', 'failure', 'quota', 'run_cap'))),
    reason      text,
    job_id      char(32),
    api_key_id  integer,
    created_at  datetime not null,
    ended_at    datetime
);
insert into follower_lists_new (id, account, actor_id, requested, scraped, status, cut_by, reason, job_id, api_key_id,
                                created_at, ended_at)
    select id, account, actor_id, requested, scraped,
           case status when 'short' then 'exhausted' when 'capped' then 'cut' when 'quota' then 'cut'
                       when 'failed' then 'cut' else status end,
           case status when 'capped' then 'run_cap' when 'quota' then 'quota' when 'failed' then 'failure' end,
           reason, job_id, api_key_id, created_at, ended_at
    from follower_lists;
drop table follower_lists;
alter table follower_lists_new rename to follower_lists;
create index follower_lists_lookup on follower_lists (account, actor_id, ended_at);
create index follower_lists_job on follower_lists (job_id);

create table scrape_accounts_new (
    job_id         char(32) not null,
    account        text not null,
    batch_index    integer not null,
    requested      integer not null,
    scraped        integer not null default 0,
    kept           integer not null default 0,
    male_count     integer not null default 0,
    female_count   integer not null default 0,
    unknown_count  integer not null default 0,
    status         text not null default 'pending' check (status in
                   ('pending', 'complete', 'exhausted', 'private', 'not_found', 'cut')),
    cut_by         text check ((status = 'cut') = (cut_by is not null) and (cut_by is null or cut_by in
                   ('budget', 'cancel', 'deletion', 'failure', 'quota', 'run_cap'))),
    reason         text,
    continuation   text,
    runs           integer not null default 0,
    list_id        integer,
    reused         boolean not null default 0,
    primary key (job_id, account)
);
insert into scrape_accounts_new (job_id, account, batch_index, requested, scraped, kept, male_count, female_count,
                                 unknown_count, status, cut_by, reason, continuation, runs, list_id, reused)
    select job_id, account, batch_index, requested, scraped, kept, male_count, female_count, unknown_count,
           case status when 'short' then 'exhausted' when 'capped' then 'cut' when 'quota' then 'cut'
                       when 'failed' then 'cut' else status end,
           case status when 'capped' then 'run_cap' when 'quota' then 'quota' when 'failed' then 'failure' end,
           reason, continuation, runs, list_id, reused
    from scrape_accounts;
drop table scrape_accounts;
alter table scrape_accounts_new rename to scrape_accounts;
create index scrape_accounts_batch on scrape_accounts (job_id, batch_index);
create index scrape_accounts_list on scrape_accounts (list_id);

create table apify_runs (
    id           integer primary key,
    run_id       text unique,
    job_id       char(32) not null,
    batch_index  integer not null,
    attempt      integer not null,
    api_key_id   integer,
    status       text not null check (status in ('starting', 'running', 'ended', 'charged', 'settled', 'void')),
    charge_cap   numeric,
    max_items    integer,
    created_at   datetime not null,
    expires_at   datetime,
    checked_at   datetime,
    ended_at     datetime,
    run_status   text,
    cost_usd     numeric
);
create index apify_runs_open on apify_runs (status, checked_at)
    where status in ('starting', 'running', 'ended', 'charged');
create index apify_runs_job on apify_runs (job_id, batch_index, attempt);

alter table apify_capacity add column runs_swept_at datetime;

create table spend_ledger (
    id           integer primary key,
    api_key_id   integer,
    job_id       char(32),
    run_id       text not null,
    kind         text not null check (kind in ('run', 'settlement')),
    usd          numeric not null,
    recorded_at  datetime not null,
    unique (run_id, kind)
);
create index spend_ledger_key on spend_ledger (api_key_id, recorded_at);
create trigger spend_ledger_no_update before update on spend_ledger
begin
    select raise(abort, 'spend_ledger is append-only: a charge is corrected by a settlement entry, never changed');
end;
create trigger spend_ledger_no_delete before delete on spend_ledger
begin
    select raise(abort, 'spend_ledger is append-only: a charge is corrected by a settlement entry, never changed');
end;

insert into spend_ledger (api_key_id, job_id, run_id, kind, usd, recorded_at)
    select j.api_key_id, b.job_id, 'before-ledger:' || b.job_id || ':' || b.batch_index, 'run', b.cost_usd,
           coalesce(b.finished_at, j.updated_at)
    from scrape_batches b join scrape_jobs j on j.job_id = b.job_id
    where b.cost_usd > 0;
update scrape_jobs set cost_usd = cost_usd + (
        select sum(b.cost_usd) from scrape_batches b
        where b.job_id = scrape_jobs.job_id and b.status not in ('succeeded', 'failed') and b.cost_usd > 0)
    where exists (select 1 from scrape_batches b where b.job_id = scrape_jobs.job_id
                  and b.status not in ('succeeded', 'failed') and b.cost_usd > 0);
insert into apify_runs (run_id, job_id, batch_index, attempt, api_key_id, status, created_at, checked_at)
    select b.apify_run_id, b.job_id, b.batch_index, b.attempts, j.api_key_id, 'running', current_timestamp,
           current_timestamp
    from scrape_batches b join scrape_jobs j on j.job_id = b.job_id
    where b.status in ('running', 'finished', 'storing') and b.apify_run_id is not null;

alter table scrape_batches drop column cost_usd;
alter table scrape_batches drop column run_cost_usd;
alter table scrape_batches drop column cost_settled;
alter table scrape_batches drop column run_status;
alter table scrape_batches drop column run_started_at;

pragma foreign_keys = on;
