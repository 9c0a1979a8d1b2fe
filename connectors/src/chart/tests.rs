//! Reading the correlation set in both layouts (the same matrix either way, the
//! latest window end at or before a time) and drawing it: one cell per pair.

use operators::comoments::{CorrMatrix, CorrRow};
use operators::Symbol;
use parquet::arrow::ArrowWriter;

use crate::chart::{render_correlation, ChartFormat, Lake, CELL_EDGE};
use crate::parquet::FeatureRow;

const T: i64 = 1_723_165_200_000; // 2024-08-09 01:00 UTC

fn write<R: FeatureRow>(dir: &std::path::Path, rel: &str, rows: &[R]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), R::schema(), None).unwrap();
    let refs: Vec<&R> = rows.iter().collect();
    w.write(&R::to_batch(&refs).unwrap()).unwrap();
    w.close().unwrap();
}

fn matrix(window_end: i64, corr: [Option<f64>; 3]) -> CorrMatrix {
    CorrMatrix {
        resolution_ms: 1_000,
        window_end,
        symbols: ["A", "B", "C"].map(Symbol::new).to_vec(),
        corr: corr.to_vec(),
        n: 60,
        revision: 0,
    }
}

fn pairs(m: &CorrMatrix) -> Vec<CorrRow> {
    let names = ["A", "B", "C"];
    let mut out = Vec::new();
    let mut at = 0;
    for i in 0..3 {
        for j in i + 1..3 {
            out.push(CorrRow {
                resolution_ms: 1_000,
                window_end: m.window_end,
                symbol_a: Symbol::new(names[i]),
                symbol_b: Symbol::new(names[j]),
                corr: m.corr[at],
                n: 60,
                revision: 0,
            });
            at += 1;
        }
    }
    out
}

#[test]
fn both_layouts_give_the_same_matrix_at_a_time() {
    let first = matrix(T - 1_000, [Some(0.5), None, Some(-0.25)]);
    let last = matrix(T + 1_000, [Some(0.9), Some(0.1), Some(-1.0)]);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let before = "correlation/resolution=1s/dt=2024-08-09/hour=00/part-00000.parquet";
    let after = "correlation/resolution=1s/dt=2024-08-09/hour=01/part-00000.parquet";
    write(dirs[0].path(), before, std::slice::from_ref(&first));
    write(dirs[0].path(), after, std::slice::from_ref(&last));
    write(dirs[1].path(), before, &pairs(&first));
    write(dirs[1].path(), after, &pairs(&last));
    let mut got = Vec::new();
    for dir in &dirs {
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let res = lake.resolution("correlation", None).unwrap();
        assert_eq!(res.label(), "1s");
        let latest = lake.correlation_at(&res, i64::MIN, i64::MAX).unwrap();
        let earlier = lake.correlation_at(&res, i64::MIN, T).unwrap();
        assert_eq!(latest.window_end, T + 1_000);
        assert_eq!(earlier.window_end, T - 1_000);
        assert_eq!(
            earlier.pairs[&("A".to_string(), "C".to_string())],
            None,
            "a null stays null"
        );
        assert!(lake.correlation_at(&res, T, T).unwrap_err().is_usage());
        got.push((latest, earlier));
    }
    assert_eq!(got[0], got[1]);
    let svg = render_correlation(&got[0].0, ChartFormat::Svg, (640, 480)).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    let edge = format!(
        "stroke=\"#{:02X}{:02X}{:02X}\"",
        CELL_EDGE.0, CELL_EDGE.1, CELL_EDGE.2
    );
    assert_eq!(svg.matches(&edge).count(), 3, "one cell per pair");
}
