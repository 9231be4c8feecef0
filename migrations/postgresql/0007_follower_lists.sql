-- Follower lists: what a scrape of one account returned, kept apart from the jobs that use it,
-- so that a later (or concurrent) job over the same account reuses it instead of paying Apify again.

create table if not exists follower_lists (
    id          bigserial primary key,
    account     text not null,
    actor_id    text not null,
    requested   integer not null,
    scraped     integer not null default 0,
    status      text not null default 'pending' check (status in
                ('pending', 'complete', 'short', 'capped', 'private', 'not_found', 'quota', 'failed')),
    reason      text,
    job_id      uuid,    -- the job whose runs scrape it; no foreign key: the list outlives that job
    api_key_id  bigint,  -- whose job caused it to be stored (a key may delete what it caused)
    created_at  timestamptz not null,
    ended_at    timestamptz
);
create index if not exists follower_lists_lookup on follower_lists (account, actor_id, ended_at);
create index if not exists follower_lists_job on follower_lists (job_id);
alter table follower_lists enable row level security;

-- Every follower a list holds, in the order the actor returned them, with its gender as
-- inferred (before any job's minConfidence): each job filters by its own target and threshold.
-- A page is one stored chunk's followers of one list, from position `first` on, as a JSON array
-- of [profile_id, username, full_name, gender, gender_confidence, is_private, is_verified,
-- profile_pic_url]: one row a page, not a row a follower, keeps the write path near one COPY.
create table if not exists list_pages (
    list_id    bigint not null references follower_lists (id) on delete cascade,
    first      integer not null,
    followers  integer not null,
    rows       text not null,
    primary key (list_id, first)
);
alter table list_pages enable row level security;

-- Each input account of a job reads one list: one its own runs fill, or another's (`reused`),
-- served from Postgres as far as its `scraped` count. No foreign key: a job may have 100,000
-- accounts, and a key checked per row would double the cost of creating it; the one place that
-- deletes lists (store.lists) clears the accounts that point at them first.
alter table scrape_accounts add column if not exists list_id bigint;
-- Nor to the job, for the same reason: `store.jobs.delete_job` deletes a job's accounts itself.
alter table scrape_accounts drop constraint if exists scrape_accounts_job_id_fkey;
alter table scrape_accounts add column if not exists reused boolean not null default false;
create index if not exists scrape_accounts_list on scrape_accounts (list_id);
-- 'apify': the batch's accounts are scraped by runs; 'lists': they are served from lists.
alter table scrape_batches add column if not exists source text not null default 'apify';
