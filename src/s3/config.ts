/**
 * S3Backend configuration and the S3Client built from it. Field names follow the API;
 * they mirror the Python seed's S3Config (bucket, prefix, region, endpoint_url, access_key_id,
 * secret_access_key, use_ssl, max_pool_connections, connect_timeout, read_timeout, max_retries).
 */
import http from "node:http";
import https from "node:https";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { DEFAULTS } from "../core/defaults.js";
import { setupErrors } from "../protocol.js";

export interface S3Capabilities {
  /** The endpoint enforces If-Match / If-None-Match on PutObject (no lost updates). */
  conditionalWrites: boolean;
  /** How If-Match wants the ETag: as S3 returns it ("quoted") or without quotes (Ceph RGW 16). */
  etagQuoting: "quoted" | "unquoted";
}

export interface S3BackendConfig {
  bucket: string;
  /** Key prefix for every workspace, e.g. "agent-workspace". Default "". */
  prefix?: string;
  /** Default "default". */
  workspace?: string;
  region?: string;
  /** e.g. "http://localhost:9000" for MinIO; a bare host uses `useSsl` to pick the scheme. */
  endpoint?: string;
  /** Path-style addressing (MinIO, Ceph, s3rver). Default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** Scheme for a bare `endpoint` host. Default true. */
  useSsl?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Any credentials the SDK accepts; otherwise the SDK's default provider chain. */
  credentials?: S3ClientConfig["credentials"];
  /** Sockets per endpoint. Default 50. */
  maxPoolConnections?: number;
  connectTimeoutMs?: number;
  readTimeoutMs?: number;
  /** SDK retries of a failed request. Default 3. */
  maxRetries?: number;
  /** Objects fetched at once by grep and batch downloads. Default 16. */
  grepConcurrency?: number;
  /** Bound of the ETag-keyed text cache used by grep. Default 64 MiB. */
  cacheBytes?: number;
  /** read()/readRaw()/grep refuse objects larger than this. Default 32 MiB. */
  maxReadBytes?: number;
  /** write/edit/upload refuse content larger than this. Default 64 MiB. */
  maxFileBytes?: number;
  /**
   * Longest time grep/search/glob may spend matching in this process (JavaScript regular
   * expressions backtrack: a hostile pattern could otherwise block the event loop for minutes).
   * Past it the call returns an error. search({ timeoutMs }) overrides it per call. Default 30000;
   * 0 is no limit (as PostgresBackend's statementTimeoutMs: 0), hostile patterns included.
   */
  searchTimeoutMs?: number;
  /** How many times an edit re-reads and re-applies after losing a race. Default 64. */
  maxEditAttempts?: number;
  /** "WHEN_REQUIRED" for servers that reject the SDK's default CRC32 checksums. */
  requestChecksumCalculation?: "WHEN_SUPPORTED" | "WHEN_REQUIRED";
  /** Skip the probe in initialize() and trust these. */
  capabilities?: S3Capabilities;
  /** An S3Client of your own (then the connection options above are ignored). */
  client?: S3Client;
}

function endpointUrl(endpoint: string | undefined, useSsl: boolean | undefined): string | undefined {
  if (!endpoint) return undefined;
  return /^[a-z]+:\/\//i.test(endpoint) ? endpoint : `${useSsl === false ? "http" : "https"}://${endpoint}`;
}

export function createS3Client(config: S3BackendConfig): S3Client {
  const maxSockets = config.maxPoolConnections ?? 50;
  const endpoint = endpointUrl(config.endpoint, config.useSsl);
  const credentials =
    config.credentials ??
    (config.accessKeyId && config.secretAccessKey
      ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, sessionToken: config.sessionToken }
      : undefined);
  return new S3Client({
    region: config.region ?? process.env.AWS_REGION ?? "us-east-1",
    endpoint,
    forcePathStyle: config.forcePathStyle ?? endpoint !== undefined,
    credentials,
    maxAttempts: (config.maxRetries ?? 3) + 1,
    requestChecksumCalculation: config.requestChecksumCalculation ?? "WHEN_SUPPORTED",
    responseChecksumValidation: config.requestChecksumCalculation ?? "WHEN_SUPPORTED",
    // The handler's options, not a NodeHttpHandler: the SDK builds its own, so S3 users install
    // @aws-sdk/client-s3 only (@smithy/node-http-handler comes with it, but is not ours to import).
    requestHandler: {
      connectionTimeout: config.connectTimeoutMs ?? 5_000,
      requestTimeout: config.readTimeoutMs ?? DEFAULTS.s3.readTimeoutMs,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
    },
  });
}

/** Key prefix normalised: no leading or trailing slashes, no empty segments. */
export function normalizePrefix(prefix: string | undefined): string {
  const segments = (prefix ?? "").split("/").filter(Boolean);
  // A server or proxy may resolve dot segments, so "tenants/../other" could land outside the prefix.
  if (segments.some((s) => s === "." || s === "..")) {
    throw new Error(setupErrors.invalidS3Prefix(prefix));
  }
  return segments.join("/");
}
