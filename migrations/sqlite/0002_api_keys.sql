-- API keys and job ownership; mirrors migrations/postgresql.

create table if not exists api_keys (
    id          integer primary key,
    name        text not null,
    key_hash    text not null unique,
    created_at  datetime not null,
    revoked_at  datetime
);
create unique index if not exists api_keys_live_name on api_keys (name) where revoked_at is null;

alter table scrape_jobs add column api_key_id integer references api_keys (id);
create index if not exists scrape_jobs_api_key on scrape_jobs (api_key_id, created_at);
create index if not exists scrape_jobs_status_updated on scrape_jobs (status, updated_at);
create index if not exists scrape_jobs_created on scrape_jobs (created_at);
