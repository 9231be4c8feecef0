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
create table if not exists list_followers (
    list_id            bigint not null references follower_lists (id) on delete cascade,
    id                 bigserial,
    profile_id         text not null,
    username           text not null,
    full_name          text not null,
    gender             text not null,
    gender_confidence  double precision not null,
    is_private         boolean,
    is_verified        boolean,
    profile_pic_url    text,
    primary key (list_id, id)
);
alter table list_followers enable row level security;

-- Each input account of a job reads one list: one its own runs fill, or another's (`reused`),
-- served from Postgres up to `served_upto` (a list_followers id) so far.
alter table scrape_accounts add column if not exists list_id bigint references follower_lists (id) on delete set null;
alter table scrape_accounts add column if not exists reused boolean not null default false;
alter table scrape_accounts add column if not exists served_upto bigint not null default 0;
create index if not exists scrape_accounts_list on scrape_accounts (list_id);
-- 'apify': the batch's accounts are scraped by runs; 'lists': they are served from lists.
alter table scrape_batches add column if not exists source text not null default 'apify';
