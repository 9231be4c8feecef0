-- followsift schema for the embedded SQLite default; mirrors migrations/postgresql.

create table if not exists scrape_jobs (
    job_id              char(32) primary key,
    status              text not null default 'queued'
                        check (status in ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    target_gender       text not null check (target_gender in ('male', 'female', 'any')),
    min_confidence      real not null default 0,
    accounts_count      integer not null,
    per_account_limit   integer not null,
    total_scrape_count  integer not null,
    total_batches       integer not null,
    batches_done        integer not null default 0,
    batches_failed      integer not null default 0,
    profiles_scraped    integer not null default 0,
    profiles_kept       integer not null default 0,
    male_count          integer not null default 0,
    female_count        integer not null default 0,
    unknown_count       integer not null default 0,
    error_message       text,
    created_at          datetime not null,
    updated_at          datetime not null,
    completed_at        datetime
);

create table if not exists scrape_batches (
    job_id            char(32) not null references scrape_jobs (job_id) on delete cascade,
    batch_index       integer not null,
    accounts          text not null,
    status            text not null default 'queued'
                      check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          integer not null default 0,
    lease_expires_at  datetime,
    apify_run_id      text,
    profiles_scraped  integer not null default 0,
    error_message     text,
    started_at        datetime,
    finished_at       datetime,
    primary key (job_id, batch_index)
);

create table if not exists scrape_results (
    id                 integer primary key,
    job_id             char(32) not null references scrape_jobs (job_id) on delete cascade,
    profile_id         text not null,
    username           text not null,
    full_name          text not null default '',
    gender             text not null,
    gender_confidence  real not null,
    is_private         boolean,
    is_verified        boolean,
    profile_pic_url    text,
    source_accounts    text not null default '',
    created_at         datetime not null,
    unique (job_id, profile_id)
);

create index if not exists scrape_results_job_id_id on scrape_results (job_id, id);
create index if not exists scrape_batches_status on scrape_batches (status, lease_expires_at);
