// What a Next.js server component or route handler does with followsift: submit a job, poll
// its status until it ends, then page through the kept profiles by cursor. Written against the
// types openapi-typescript generates from /api/openapi.json (tests/test_ts_client.py), so a
// change to the API that breaks a client breaks this file's typecheck.
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./generated/followsift";

export type JobStatus = components["schemas"]["JobStatus"];
export type Profile = components["schemas"]["Profile"];
export type ScrapeRequest = operations["submitScrapeJob"]["requestBody"]["content"]["application/json"];
type ApiError = components["schemas"]["ErrorResponse"];
type Client = ReturnType<typeof followsift>;

const ENDED: ReadonlySet<JobStatus["status"]> = new Set(["completed", "failed", "cancelled"]);

/** A client for one API key; keep the key on the server (never in the browser bundle). */
export function followsift(baseUrl: string, apiKey: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
}

function fail(error: ApiError): never {
  throw new Error(`followsift: ${error.error.code}: ${error.error.message}`);
}

export async function submitJob(client: Client, body: ScrapeRequest): Promise<string> {
  const { data, error } = await client.POST("/api/scrape-followers", { body });
  return error ? fail(error) : data.job_id;
}

export async function waitForJob(client: Client, jobId: string, intervalMs = 2000): Promise<JobStatus> {
  for (;;) {
    const { data, error } = await client.GET("/api/job-status/{job_id}", { params: { path: { job_id: jobId } } });
    if (error) fail(error);
    if (ENDED.has(data.status)) return data;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

type ResultsPage = operations["listJobResults"]["responses"][200]["content"]["application/json"];

async function resultsPage(client: Client, jobId: string, limit: number, cursor: string | null): Promise<ResultsPage> {
  const query = cursor === null ? { limit } : { limit, cursor };
  const { data, error } = await client.GET("/api/job-results/{job_id}", { params: { path: { job_id: jobId }, query } });
  return error ? fail(error) : data;
}

/** Every kept profile, one page of `limit` at a time, following `next_cursor` (keyset paging). */
export async function* jobProfiles(client: Client, jobId: string, limit = 1000): AsyncGenerator<Profile> {
  let cursor: string | null = null;
  do {
    const page = await resultsPage(client, jobId, limit, cursor);
    yield* page.profiles;
    cursor = page.next_cursor;
  } while (cursor !== null);
}

export async function scrapeFollowers(client: Client, body: ScrapeRequest) {
  const jobId = await submitJob(client, body);
  const status = await waitForJob(client, jobId);
  const women: Profile[] = [];
  for await (const profile of jobProfiles(client, jobId)) {
    if (profile.gender === "female" && profile.gender_confidence >= 0.9) women.push(profile);
  }
  return { status, women, kept: status.profiles_kept };
}
