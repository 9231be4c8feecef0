"""What a job will scrape and cost, before it runs.

Apify's follower actors charge a start fee per run and a price per result
(APIFY_RUN_START_USD, APIFY_PRICE_PER_1000_USD). A job runs one actor run per batch of
BATCH_SIZE accounts, each capped at per_account_limit x its accounts items and, when the
job has a budget, at its share of the budget (maxCostUsd / batches), as the worker does.
How many followers an account really has is unknown until it is scraped, so the figures
are upper bounds.
"""
import math


def per_account_limit(total_scrape_count, accounts):
    """Followers to scrape per account: the total split evenly, rounded up."""
    return math.ceil(total_scrape_count / accounts)


def estimate(accounts, limit, max_cost_usd, settings, batch_size):
    """Runs, followers and cost of scraping `accounts` accounts, `limit` followers each."""
    full, rest = divmod(accounts, batch_size)
    batch_sizes = [(batch_size, full)] + ([(rest, 1)] if rest else [])
    batches = full + bool(rest)
    share = None if max_cost_usd is None or not batches else max_cost_usd / batches
    followers, cost = 0, 0.0
    for size, count in batch_sizes:
        items, run_cost = _run(size * limit, share, settings)
        followers += items * count
        cost += run_cost * count
    return {
        "accounts": accounts,
        "per_account_limit": limit,
        "batches": batches,
        "max_followers": limit * accounts,
        "expected_followers": followers,
        "expected_cost_usd": round(cost, 6),
        "max_cost_usd": max_cost_usd,
        "price_per_1000_usd": settings.apify_price_per_1000_usd,
        "run_start_usd": settings.apify_run_start_usd,
    }


def saved(accounts, followers, settings, batch_size):
    """What serving `accounts` from stored lists (`followers` in all) saved: the runs their
    batches would have started, and those runs' start fees plus the followers' price."""
    runs = math.ceil(accounts / batch_size)
    usd = runs * settings.apify_run_start_usd + followers * settings.apify_price_per_1000_usd / 1000
    return {"accounts": accounts, "followers": followers, "runs_saved": runs, "usd_saved": round(usd, 6)}


def _run(max_items, share, settings):
    """(items, cost) of one run capped at `max_items` results and `share` USD."""
    price = settings.apify_price_per_1000_usd / 1000
    start = settings.apify_run_start_usd
    items = max_items
    if share is not None and price > 0:
        items = min(items, max(0, math.floor((share - start) / price + 1e-9)))
    cost = start + items * price
    return items, cost if share is None else min(cost, share)
