//! Redaction: applied twice it changes nothing more, and the secrets it knows do not
//! survive it, wherever they sit in the text.

use logwarden::redact::Redactor;
use proptest::prelude::*;

use crate::{config, lossy, mutated, soup, CASES};

const PIECES: &[&str] = &[
    " ",
    "\n",
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "=",
    ": ",
    "\"",
    "'",
    "\\\"",
    "Bearer ",
    "basic ",
    "sk-ant-",
    "sk-proj-",
    "AKIA",
    "ghp_",
    "glpat-",
    "xoxb-",
    "AIza",
    "eyJ",
    ".",
    "-----BEGIN ",
    "RSA PRIVATE KEY",
    "-----END ",
    "-----",
    "\\n",
    "https://",
    "u:p@h",
    "[REDACTED:",
    "]",
    "aB3dE5gH7jK9mN1pQ2sT",
    "ABCDEFGHIJKLMNOP",
    "abc123",
    "/+=",
    "}",
    ",",
];

/// A secret of a kind the built-in rules know, and the part of it that must go.
fn secret() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[A-Z0-9]{16}".prop_map(|k| (format!("AKIA{k}"), k)),
        "[A-Za-z0-9]{36}".prop_map(|k| (format!("ghp_{k}"), k)),
        "[A-Za-z0-9_-]{24}".prop_map(|k| (format!("sk-ant-{k}"), k)),
        "[A-Za-z0-9]{20}".prop_map(|k| (format!("glpat-{k}"), k)),
        (
            "[A-Za-z0-9_-]{10}",
            "[A-Za-z0-9_-]{20}",
            "[A-Za-z0-9_-]{16}"
        )
            .prop_map(|(a, b, c)| (format!("eyJ{a}.eyJ{b}.{c}"), b)),
        "[A-Za-z0-9]{12,24}".prop_map(|k| (format!("password={k}"), k)),
        "[A-Za-z0-9]{12,24}".prop_map(|k| (format!("\"api_key\": \"{k}\""), k)),
        "[A-Za-z0-9._~+/-]{16,30}".prop_map(|k| (format!("Authorization: Bearer {k}"), k)),
        "[A-Za-z0-9]{12,20}".prop_map(|k| (format!("postgres://app:{k}@db:5432/x"), k)),
        "[A-Za-z0-9+/]{40,80}".prop_map(|k| {
            (
                format!("-----BEGIN RSA PRIVATE KEY-----\n{k}\n-----END RSA PRIVATE KEY-----"),
                k,
            )
        }),
    ]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn redaction_is_idempotent_and_bounded(text in prop_oneof![4 => mutated(soup(PIECES, 14)), 1 => lossy(80)]) {
        let r = Redactor::default();
        let once = r.clean(&text);
        prop_assert!(once.len() <= 4 * text.len() + 64, "{} from {}", once.len(), text.len());
        let twice = r.clean(&once);
        prop_assert_eq!(&twice, &once, "input {:?}", text);
    }

    #[test]
    fn known_secrets_do_not_survive(
        before in soup(PIECES, 5),
        (secret, body) in secret(),
        after in soup(PIECES, 5),
    ) {
        // Known gap, not covered here: a private key block cut short (no END line)
        // right before a secret is redacted to the end of its base64 run, which can
        // eat the start of a JWT and leave the rest unrecognised.
        let (before, after) = (before.replace("-----BEGIN ", ""), after.replace("-----BEGIN ", ""));
        let text = format!("{before} {secret} {after}");
        let out = Redactor::default().clean(&text);
        let kept = out.matches(body.as_str()).count();
        let around = before.matches(body.as_str()).count() + after.matches(body.as_str()).count();
        prop_assert!(kept <= around, "{:?} kept in {:?}", body, out);
    }
}

/// A line holding a secret of a shape the built-in rules know, drawn whole (its
/// random parts can hold no digit, repeat, or start like another provider's key),
/// and the parts of it that must not be seen.
fn secret_line() -> impl Strategy<Value = (String, Vec<String>)> {
    let shapes = prop_oneof![
        (
            100_000_000_000_000_000u64..900_000_000_000_000_000,
            "[A-Za-z0-9_-]{6}",
            "(sk-|ghp_|xoxb-)?[A-Za-z0-9_-]{38}",
        )
            .prop_map(|(id, a, b)| {
                use base64::Engine;
                let id = base64::engine::general_purpose::STANDARD_NO_PAD.encode(id.to_string());
                (format!("{id}.{a}.{b}"), vec![a, b])
            }),
        ("[A-Za-z0-9]{40}", "[A-Za-z0-9_-]{43}", "(\n|\n    |\r\n)").prop_map(|(a, b, fold)| {
            (
                format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{fold}eyJzdWIiOi{a}.{fold}{b}"),
                vec![a, b],
            )
        }),
        "[0-9a-f]{32}".prop_map(|k| (format!("https://{k}@o4504.ingest.sentry.io/4504"), vec![k])),
        (1_000_000_000u64..9_000_000_000, "[A-Za-z0-9_-]{33}").prop_map(|(id, k)| (
            format!("https://api.telegram.org/bot{id}:AA{k}/sendMessage"),
            vec![k]
        )),
        "[A-Za-z0-9_-]{40}".prop_map(|k| (format!("sk-proj-{k}"), vec![k])),
        "[A-Za-z0-9]{36}".prop_map(|k| (format!("ghp_{k}"), vec![k])),
        "[A-Za-z0-9]{24}".prop_map(|k| (format!("sk_live_{k}"), vec![k])),
        "[a-z0-9]{32}".prop_map(|k| (format!("key-{k}"), vec![k])),
        "[A-Za-z0-9]{9,16}".prop_map(|k| (format!("password={k}"), vec![k])),
        "[A-Za-z0-9]{12,20}".prop_map(|k| (format!("postgres://app:{k}@db:5432/x"), vec![k])),
        "[A-Za-z0-9._~+/-]{16,40}".prop_map(|k| (format!("Authorization: Bearer {k}"), vec![k])),
    ];
    let head = prop::sample::select(
        &[
            "",
            "failed: ",
            "Discord gateway refused ",
            "JWT verify failed for ",
            "call for user 42 failed with ",
            "GET /api/v1/items?id=7 ",
        ][..],
    );
    let tail =
        prop::sample::select(&["", " retrying", " (attempt 3)", "\nnext line", ": timeout"][..]);
    (head, shapes, tail).prop_map(|(h, (s, parts), t)| (format!("{h}{s}{t}"), parts))
}

proptest! {
    #![proptest_config(config(CASES / 5))]

    /// What is shown of a record is its redacted text and its group's template: the
    /// masker's wildcards can cut a secret into pieces no rule recognises, so the
    /// template is redacted against the record. Neither shows a secret, nor the
    /// first or last 12 characters of a long one.
    #[test]
    fn secrets_survive_neither_in_the_record_nor_in_its_template(
        (line, parts) in secret_line(),
        others in prop::collection::vec(secret_line(), 0..3),
    ) {
        let red = Redactor::default();
        // The group may have seen other records first; the template shown is the one
        // this record left.
        let mut miner = logwarden::signature::drain::Miner::new();
        for (o, _) in &others {
            miner.add(o);
        }
        let template = miner.add(&line).template;
        let shown = [red.clean(&line), red.clean_template(&template, &line)];
        for text in &shown {
            for p in &parts {
                let mut pieces = vec![p.as_str()];
                if p.len() >= 20 {
                    pieces.extend([&p[..12], &p[p.len() - 12..]]);
                }
                for piece in pieces {
                    prop_assert!(!text.contains(piece), "{:?} of {:?} in {:?}", piece, line, text);
                }
            }
        }
    }
}
