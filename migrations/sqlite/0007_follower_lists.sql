-- Follower lists, kept apart from jobs; mirrors migrations/postgresql.

create table if not exists follower_lists (
    id          integer primary key,
    account     text not null,
    actor_id    text not null,
    requested   integer not null,
    scraped     integer not null default 0,
    status      text not null default 'pending' check (status in
                ('pending', 'complete', 'short', 'capped', 'private', 'not_found', 'quota', 'failed')),
    reason      text,
    job_id      char(32),
    api_key_id  integer,
    created_at  datetime not null,
    ended_at    datetime
);
create index if not exists follower_lists_lookup on follower_lists (account, actor_id, ended_at);
create index if not exists follower_lists_job on follower_lists (job_id);

create table if not exists list_pages (
    list_id    integer not null references follower_lists (id) on delete cascade,
    first      integer not null,
    followers  integer not null,
    rows       text not null,
    primary key (list_id, first)
);

alter table scrape_accounts add column list_id integer;
alter table scrape_accounts add column reused boolean not null default 0;
create index if not exists scrape_accounts_list on scrape_accounts (list_id);
alter table scrape_batches add column source text not null default 'apify';
