-- Per-account accounting: for each input account of a job, what was asked, scraped and kept,
-- and how its list ended (with the actor's continuation token while it goes on).

create table if not exists scrape_accounts (
    job_id         uuid not null references scrape_jobs (job_id) on delete cascade,
    account        text not null,
    batch_index    integer not null,
    requested      integer not null,
    scraped        integer not null default 0,
    kept           integer not null default 0,
    male_count     integer not null default 0,
    female_count   integer not null default 0,
    unknown_count  integer not null default 0,
    status         text not null default 'pending' check (status in
                   ('pending', 'complete', 'short', 'capped', 'private', 'not_found', 'quota', 'failed')),
    reason         text,
    continuation   text,
    runs           integer not null default 0,
    primary key (job_id, account)
);
create index if not exists scrape_accounts_batch on scrape_accounts (job_id, batch_index);
alter table scrape_accounts enable row level security;

-- The accounts of a batch's current run (a continuation run has one), as a JSON list.
alter table scrape_batches add column if not exists run_accounts text;
