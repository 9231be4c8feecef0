-- Short tasks and the Apify capacity governor; mirrors migrations/postgresql. SQLite cannot
-- change a check constraint, so scrape_batches is rebuilt.

create table scrape_batches_new (
    job_id            char(32) not null references scrape_jobs (job_id) on delete cascade,
    batch_index       integer not null,
    accounts          text not null,
    status            text not null default 'queued'
                      check (status in ('queued', 'starting', 'running', 'finished', 'storing', 'succeeded',
                                        'failed', 'cancelled')),
    attempts          integer not null default 0,
    lease_expires_at  datetime,
    apify_run_id      text,
    profiles_scraped  integer not null default 0,
    error_message     text,
    started_at        datetime,
    finished_at       datetime,
    cost_usd          numeric not null default 0,
    not_before        datetime,
    failures          integer not null default 0,
    run_status        text,
    run_started_at    datetime,
    run_checked_at    datetime,
    run_cost_usd      numeric not null default 0,
    cost_settled      boolean not null default 0,
    webhook_token_hash text,
    items_read        integer not null default 0,
    male_count        integer not null default 0,
    female_count      integer not null default 0,
    unknown_count     integer not null default 0,
    primary key (job_id, batch_index)
);
insert into scrape_batches_new (job_id, batch_index, accounts, status, attempts, lease_expires_at, apify_run_id,
                                profiles_scraped, error_message, started_at, finished_at, cost_usd)
    select job_id, batch_index, accounts, status, attempts, lease_expires_at, apify_run_id, profiles_scraped,
           error_message, started_at, finished_at, cost_usd from scrape_batches;
drop table scrape_batches;
alter table scrape_batches_new rename to scrape_batches;

create index scrape_batches_moving on scrape_batches (status, job_id)
    where status in ('starting', 'running', 'finished', 'storing');
create index scrape_batches_queued on scrape_batches (job_id, batch_index) where status = 'queued';

create table apify_capacity (
    id                 integer primary key check (id = 1),
    account_cap        integer,
    lowered_cap        integer,
    lowered_until      datetime,
    limits_checked_at  datetime,
    updated_at         datetime not null default current_timestamp
);
insert into apify_capacity (id) values (1);

alter table scrape_jobs add column callback_attempts integer not null default 0;
alter table scrape_jobs add column callback_checked_at datetime;
