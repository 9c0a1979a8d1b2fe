//! Tests of configuration loading: defaults, every problem reported with its key,
//! environment overrides and typed values.

use super::*;
use connectors::decode::{FormatHint, Kind};

fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Validated, ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    load(
        Some(&path),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

#[test]
fn embedded_default_is_valid() {
    let v = load(None, std::iter::empty()).unwrap();
    assert_eq!(v.resolutions.len(), 3);
    assert_eq!(v.config.kafka.brokers, "embedded");
    assert_eq!(v.config.checkpoint.interval.as_ms(), 3_600_000);
    assert_eq!(v.config.sources[0].kind, Kind::Trades);
    assert_eq!(v.config.sinks.charts, ChartSinkConfig::default());
}

#[test]
fn an_empty_file_takes_every_default() {
    let v = load_str("", &[]).unwrap();
    assert_eq!(v.config.features, FeaturesConfig::default());
    assert_eq!(v.config.time, TimeConfig::default());
    assert_eq!(v.config.sources, vec![SourceConfig::default()]);
    assert_eq!(v.config.progress.interval.as_ms(), 5_000);
    assert!(!v.config.sinks.charts.enabled);
}

#[test]
fn reports_every_problem_with_its_key() {
    let err = load_str(
        "[features]\nresolutions = [\"1m\", \"90s\"]\nrolling_window = 1\nbogus = 1\n[time]\nidle_timeout = \"soon\"\n[nope]\n[[sources]]\nkind = \"depth\"\nextra = 1\n",
        &[],
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "features.bogus: unknown key",
        "nope: unknown section",
        "sources[0].extra: unknown key",
        "sources[0].kind: unknown variant `depth`",
        "time.idle_timeout: `soon` is not a duration",
        "features.resolutions",
        "features.rolling_window",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    assert!(text.contains("c.toml: "), "{text}");
    assert!(!text.contains("in `"), "the key is not repeated: {text}");
}

#[test]
fn typed_values_reject_other_forms() {
    let e = load_str(
        "[progress]\ninterval = 5\n[checkpoint]\ninterval = \"90m\"\n[sinks.parquet]\ncompression = \"snappy\"\n[[sources]]\nformat = \"csv\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "progress.interval: `5` has no unit",
        "checkpoint.interval: must be a whole number of hours",
        "sinks.parquet.compression: unknown variant `snappy`",
        "sources[0].format: unknown variant `csv`",
    ] {
        assert!(e.contains(needle), "{needle} missing in {e}");
    }
}

#[test]
fn sources_hold_the_decoder_enums() {
    let v = load_str(
        "[[sources]]\nname = \"a\"\nkind = \"candles\"\nformat = \"binance\"\n[[sources]]\nname = \"b\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(v.config.sources[0].kind, Kind::Candles);
    assert_eq!(v.config.sources[0].format, FormatHint::Binance);
    assert_eq!(v.config.sources[1].kind, Kind::Trades);
    let e = load_str(
        "[[sources]]\nname = \"a\"\n[[sources]]\nname = \"a\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sources[1].name"), "{e}");
}

#[test]
fn pass_through_client_properties_are_not_unknown() {
    let v = load_str(
        "[kafka]\nbrokers = \"h:9092\"\n[kafka.client]\n\"sasl.username\" = \"u\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(v.config.kafka.client["sasl.username"], "u");
}

#[test]
fn env_overrides_apply_and_are_checked() {
    let v = load_str(
        "",
        &[
            ("MARKETFLOW__FEATURES__ROLLING_WINDOW", "30"),
            ("MARKETFLOW__KAFKA__BROKERS", "h:9092"),
            ("MARKETFLOW__TIME__IDLE_TIMEOUT", "3s"),
        ],
    )
    .unwrap();
    assert_eq!(v.config.features.rolling_window, 30);
    assert_eq!(v.config.kafka.brokers, "h:9092");
    assert_eq!(v.config.time.idle_timeout.as_ms(), 3_000);
    let v = load_str("", &[("MARKETFLOW__FEATURES__RESOLUTIONS", "[\"1m\"]")]).unwrap();
    assert_eq!(v.resolutions.len(), 1);
    let e = load_str("", &[("MARKETFLOW__FEATURES__NOPE", "1")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("features.nope"), "{e}");
    let e = load_str("", &[("MARKETFLOW__FEATURES__ROLLING_WINDOW", "abc")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("rolling_window"), "{e}");
    let e = load_str("", &[("MARKETFLOW__NOPE", "1")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected MARKETFLOW__SECTION__KEY"), "{e}");
}
