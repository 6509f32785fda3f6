# Writes the secret corpus with the real loguru: run as a file (loguru's diagnose
# reads the source lines) with `logger` (after `logger.remove()`) and SINK set to "text" (app.log, default format) or "json"
# (app.json, serialize=True). Every record has its own logger name (`corpus.<case>`)
# so that each becomes its own incident and shows in a prompt; the times are fixed.
# The secret values are made up; each one is listed in secrets.txt, each value that
# must survive in negatives.txt.
from datetime import timedelta, timezone

from loguru._datetime import datetime as LoguruDatetime

START = LoguruDatetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc)
CLOCK = {"n": 0}


def at_fixed_time(record):
    CLOCK["n"] += 1
    record["time"] = START + timedelta(seconds=CLOCK["n"])


if SINK == "text":
    logger.add("app.log", diagnose=True, backtrace=True, colorize=False)
else:
    logger.add("app.json", diagnose=True, backtrace=True, serialize=True)

log = logger.patch(at_fixed_time)


def case(name):
    return log.patch(lambda r: r.update(name="corpus." + name))


MESSAGES = [
    # webhook URLs
    ("webhook_slack", "Slack alert post failed: https://hooks.slack.com/services/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 timed out"),
    ("webhook_discord_json", 'notify config {"webhook_url": "https://discord.com/api/webhooks/1098765432109876543/Kp3-Lq7_Wm2Xn8Yr4Zs6At0Bu5Cv9Dw1Ex3Fy7Gz2Ha6Ib8Jc0Kd4Le6Mf8Ng2Oh4Pi"}'),
    ("webhook_generic_path", "inbound POST /webhook/wh7Hq2Zp9Lm4Xv8Nc3Rt returned 500"),
    ("webhook_slack_repr", "retry queue item {'url': 'https://hooks.slack.com/services/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', 'tries': 3}"),
    ("webhook_teams", "teams notify failed https://acme.webhook.office.com/webhookb2/9a8b7c6d-1e2f-4a5b-8c7d-6e5f4a3b2c1d@0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/IncomingWebhook/5e4d3c2b1a09f8e7d6c5b4a392817065/3c2d1e0f"),
    ("webhook_escaped", 'payload={\\"hook\\": \\"https://hooks.example.com/hooks/Hk3Jm5Np7Qr9St1Vw3Xy\\"}'),
    # Twilio
    ("twilio_env", "Twilio 20003 auth failed: TWILIO_AUTH_TOKEN=7c3f9a1e5b2d8c4f6a0e1b3d5f7a9c2e"),
    ("twilio_client", "sms client init Client('AC31a7c9e2f4b6d8a0c2e4f6b8d0a2c4e6', 'e2f4a6c8b0d1e3f5a7c9b1d3e5f7a9c1')"),
    ("twilio_json", 'sms config {"twilio": {"account_sid": "AC1f2e3d4c5b6a79880f1e2d3c4b5a6978", "api_key": "SK9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "api_secret": "Hq4Lm8Np2Rt6Vx0Zb3Dg7Jk1"}}'),
    ("twilio_basic", "twilio GET https://AC0a1b2c3d4e5f60718293a4b5c6d7e8f9:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b@api.twilio.com/2010-04-01/Accounts 401"),
    ("twilio_bare_key", "rotating Twilio API key SK0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c failed"),
    # SendGrid and npm
    ("sendgrid_bare", "SendGrid 401 with key SG.Xq3Lm7Np1Rt5Vx9Zb2Dg6J.kP4sW8yB2fH6jM0qT4vX8zC2gK6nR0uY4aE8iO2lS"),
    ("sendgrid_json", 'mail settings {"sendgrid_api_key": "SG.aA1bB2cC3dD4eE5fF6gG7h.Hh8Ii9Jj0Kk1Ll2Mm3Nn4Oo5Pp6Qq7Rr8Ss9Tt0Uu1"}'),
    ("npm_bare", "npm ERR! code E401 npm_Xy7Kp3Lm9Nq5Rs1Tv7Wx3Yz9Ab5Cd1Ef7Gh3I"),
    ("npm_npmrc", "npmrc line //registry.npmjs.org/:_authToken=npm_Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9L0"),
    # DSNs with / and @ in the password, and an empty user
    ("dsn_slash_at", "cannot connect to postgres://billing:pa/ss@w0rd@db.internal:5432/billing"),
    ("dsn_redis_nouser", "redis error redis://:Rd1s-P@ss/w0rd@cache.internal:6379/0"),
    ("dsn_json", 'settings {"DATABASE_URL": "mysql://app:m!x@d/p@ss@10.0.0.5:3306/app"}'),
    ("dsn_repr", "engine created for 'postgresql+psycopg://etl:Etl@2026/load@warehouse:5432/dw'"),
    ("dsn_urlencoded", "callback failed: next=postgres%3A%2F%2Fapp%3AEnc0ded%2FPw%40db%2Fapp"),
    # cookies and sessions
    ("cookie_header", "request headers: Cookie: sessionid=k2j4h6g8f0d1s3a5; csrftoken=Wq8Er4Ty2Ui6Op0As; remember=Rm9Bx3Cv7Nz1"),
    ("cookie_set", "Set-Cookie: session=.eJwNy0EKgCAQBdCrxF9n4FAjdBnRWkQGNeJGujsu8_yc1Fz5g.ZxYz1A.Q9w8E7r6T5y4U3i2O1p0; HttpOnly; Path=/"),
    ("cookie_django", "SuspiciousSession: sessionid=8h3k5m7n9p1r3t5v7x9z1b3d5f7h9j1l"),
    ("cookie_flask_repr", "request.cookies={'session': 'eyJfZnJlc2giOmZhbHNlfQ.Z3Jx4w.Lq2Nw4Er6Ty8Ui0Op2As4Df6Gh8Jk'}"),
    ("cookie_json_headers", 'upstream 401 {"headers": {"Cookie": "laravel_session=Ab12Cd34Ef56Gh78Ij90; XSRF-TOKEN=Kl12Mn34Op56Qr78"}}'),
    # PGP private keys
    ("pgp_block", "gpg import failed: -----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: https://gnupg.org\n\nlQOYBGV1c2VyQGV4YW1wbGUuY29tAAoJEPGPkeyBody1\nx9Kq3Lm5Np7Rt9Vx1Zb3Dg5Jk7Mn9Pq1St3Vw5Yz7\n=Xq4B\n-----END PGP PRIVATE KEY BLOCK-----"),
    ("pgp_repr", "signer init failed for key '-----BEGIN PGP PRIVATE KEY BLOCK-----\\n\\nlQVYBGV4cGdwRXNjYXBlZEJvZHkyAAoJEPGP\\nWz8Xy6Vu4Ts2Rq0Po8Nm6Lk4Ji2Hg0\\n=Ab1C\\n-----END PGP PRIVATE KEY BLOCK-----\\n'"),
    # card numbers: plain, spaced, dashed, in JSON
    ("card_plain", "payment declined for card 4539148803436467 (insufficient funds)"),
    ("card_spaced", "charge retry card=5200 8282 8282 8210 exp 11/29"),
    ("card_amex_dashed", "amex refused 3782-822463-10005 by issuer"),
    ("card_dashed", "refund failed for 6011-9988-7766-5546"),
    ("card_json", 'stripe payload {"number": "3566002020360505", "cvc": "123"}'),
    # presigned URL signatures
    ("sig_s3", "download 403 https://bkt.s3.amazonaws.com/r.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T100000Z&X-Amz-Expires=900&X-Amz-Signature=9f3c2a1b8e7d6c5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"),
    ("sig_gcs", "gcs upload expired ?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f9f3c2a1b8e7d6c5f4a3b2c1d0e9f8a7b6c"),
    ("sig_azure", "blob 403 https://acct.blob.core.windows.net/c/f.bin?sv=2022-11-02&sr=b&sig=Xk2%2Bq9LmN3pR8sT4wZ7vB1cD5fG6hJ0k%3D&se=2026-11-23"),
    ("sig_cloudfront", "cdn 403 https://d1.cloudfront.net/v.mp4?Expires=1796033091&Signature=Kq8vN2xLp4Rz7Wm3Ty6Hs9Bd4Fg~Xc1Vb5Nm7Qw-&Key-Pair-Id=K2JCJMDEHXQW5F"),
    ("sig_generic", "share link https://cdn.example.com/f.zip?exp=1796033091&sig=Yb4Nc8Md2Qe6Rf0Sg4Th8Ui rejected"),
    # GCP service account JSON
    ("gcp_service_account", 'bad credentials file {"type": "service_account", "project_id": "acme-prod", "private_key_id": "4f2a9c1e7b3d8a6f5e0c2b9d7a1f3e8c6b4d2a0f", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDgcpSAkeyBody\\n-----END PRIVATE KEY-----\\n", "client_email": "svc@acme-prod.iam.gserviceaccount.com"}'),
    # multi-word unquoted passwords
    ("password_words_colon", "vault unseal failed, password: correct horse battery staple"),
    ("password_words_equals", "login password=tulip orbit canyon fortytwo user=ops"),
    ("password_yaml", "config dump:\n  db_host: db.internal\n  db_password: lantern quiet river\n  db_user: app"),
    # unknown shapes next to secret-like names (entropy)
    ("entropy_header", "upstream rejected x-internal-auth: Hm4Kq9Xz2Lw7Pv3Rt8NyQ2"),
    ("entropy_json", 'license check {"license_key": "Lk4Jh8Gf2Ds6Aq0Wz3XcV5"}'),
    ("entropy_hmac", "webhook verify hmac=7c1e9a3f5b2d8e4c6a0f1b3d5e7a9c2f4b6d8e0a failed"),
    ("entropy_sentry", "sentry init dsn: https://6f5e4d3c2b1a0f9e8d7c6b5a49382716@o42.ingest.sentry.io/7"),
    # a password a person chose, after its name and a space
    ("spaced_password", "login failed: wrong password Tr0ub4dor&3 for admin"),
    ("spaced_password_quoted", "user typed password 'open sesame 42' at the prompt"),
    # must NOT be redacted (negatives.txt)
    ("keep_password_prose", "Failed password for invalid user root from 10.0.0.7 port 22 ssh2"),
    ("keep_git_sha", "deploy 9fceb02d0ae598e95dc970b74767f19372d61af8 rolled out with errors"),
    ("keep_uuid", "request 550e8400-e29b-41d4-a716-446655440000 timed out"),
    ("keep_order_ids", "order 4539148803436468 and invoice 5200-8282-8282-8211 not found"),
    ("keep_numbers", "slow query took 0.4111111111111111s at ts=1796033091234 on port 5432, retry in 30s"),
    ("keep_names", "max_tokens=4096 exceeded; cache_key=user:42:profile; POST /api/webhooks/stripe returned 500"),
    ("keep_twilio_sid", "account AC31a7c9e2f4b6d8a0c2e4f6b8d0a2c4e6 suspended"),
]

for name, message in MESSAGES:
    case(name).error(message)

# Extras: shown by the JSON sink (`extra`), not by the default text format.
case("extra_bind").bind(api_token="Ex7Tr4Tk9Qw2Zx5Cv8Bn1", session_cookie="Sc3Vb6Nm9Qa2Ws5Ed8Rf").error("checkout failed")


# loguru diagnose=True: values drawn under the variables' names. The values come
# from a function, not literals: loguru prints each frame's source line as well.
VAULT = ["marble window autumn seven", "Sk5Wq8Er1Ty4Ui7Op0As3Df6", "Ss2Dd4Ff6Gg8Hh0Jj2Kk4Ll6", "Pw7Kj3Hg9Fd1Sa5Lk"]


def from_vault(n):
    return VAULT[n]


def login(user, password):
    return len(user) / (len(password) - len(password))


def sign(payload, secret_key, session):
    return payload["sig"] + secret_key + session


class Settings:
    def __init__(self):
        self.api_token = from_vault(1)[::-1]
        self.region = "eu-west-1"


def fetch(settings, pw):
    raise PermissionError(settings.region + settings.api_token[:0] + pw[:0])


try:
    login("ops", from_vault(0))
except ZeroDivisionError:
    case("dump_password").exception("login crashed")

try:
    sign({"a": 1}, from_vault(1), from_vault(2))
except KeyError:
    case("dump_secret_key").exception("signing crashed")

try:
    fetch(Settings(), from_vault(3))
except PermissionError:
    case("dump_attribute").exception("fetch crashed")
