"""Scrapy settings for rightswatch crawls (Scrapy-only; the runner adds the per-run values).

The network policy's settings (resolver, middlewares) come from `crawler.safety.safety_settings`
and are merged on top by the runner; the user agent, robots and size limits come from the run.
"""

from __future__ import annotations

BOT_NAME = "rightswatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"

# Politeness: AutoThrottle adapts the delay to the server's latency; per-domain caps hold.
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_DELAY = 0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

# Hostile servers: whole-request timeout, redirect cap, size caps before decompression ends.
DOWNLOAD_TIMEOUT = 30
REDIRECT_MAX_TIMES = 10
METAREFRESH_ENABLED = True
METAREFRESH_MAXDELAY = 10
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024  # pages; media requests carry their own download_maxsize
DOWNLOAD_WARNSIZE = 0
DOWNLOAD_FAIL_ON_DATALOSS = False  # keep the bytes, flag the capture incomplete
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]

# A first SIGTERM drains; an offsite redirect is refused with a reason (crawler.middlewares).
# The network policy's middlewares (crawler.safety) are merged on top.
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.DrainMiddleware": 5,
    "crawler.middlewares.OffsiteRedirectMiddleware": 650,  # sees a 3xx before RedirectMiddleware
}

# The frontier lives in the database (crawler.frontier), which de-duplicates on canonical URLs.
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.DownloaderAwarePriorityQueue"
DEPTH_PRIORITY = 0

ITEM_PIPELINES = {
    "crawler.pipelines.FingerprintPipeline": 100,
    "crawler.pipelines.MatchPipeline": 200,
    "crawler.pipelines.RecordPipeline": 300,
}
EXTENSIONS = {
    "crawler.progress.Progress": 500,
    "crawler.progress.RobotsLog": 510,
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
}
CONCURRENT_ITEMS = 32

# rightswatch's own knobs (prefixed, read once in from_crawler).
FINGERPRINT_ENABLED = True
FINGERPRINT_WORKERS = 1
MEDIA_PER_PAGE = 100
MEDIA_PER_RUN = 20_000
PROGRESS_INTERVAL_S = 2.0

LOG_LEVEL = "WARNING"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
