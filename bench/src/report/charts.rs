//! SVG charts for `--report` with plotters' SVG backend (no fonts, no
//! bitmaps: text is left to the SVG viewer).

use plotters::prelude::*;

use super::table::si;

const SIZE: (u32, u32) = (860, 460);
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
/// Percentiles are drawn up to 99.999 % (quantile 1 is the maximum).
const MAX_NINES: f64 = 5.0;

/// One line: a label and its (x, y) points.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>);

/// Latency percentile curves from (quantile, µs) points: x is the
/// percentile on a "nines" scale (90 %, 99 %, 99.9 % … equally spaced),
/// y milliseconds on a log scale. `None` when there is nothing to draw.
pub fn latency(title: &str, curves: &[Series]) -> anyhow::Result<Option<String>> {
    let nines = |q: f64| (-(1.0 - q).max(10f64.powf(-MAX_NINES)).log10()).max(0.0);
    let lines: Vec<Series> = curves
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(label, p)| {
            let pts = p
                .iter()
                .map(|&(q, us)| (nines(q), (us / 1000.0).max(1e-3)))
                .collect();
            (*label, pts)
        })
        .collect();
    let Some((xmax, (ymin, ymax))) = bounds(&lines) else {
        return Ok(None);
    };
    let xmax = xmax.ceil().clamp(2.0, MAX_NINES);
    let (ymin, ymax) = (ymin / 1.5, ymax * 1.5);
    render(|root| {
        let mut chart =
            frame(root, title).build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_labels(xmax as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| ms_label(*y))
            .draw()?;
        draw_lines(&mut chart, &lines, SeriesLabelPosition::UpperLeft)
    })
    .map(Some)
}

/// Counts per second: one line per series, dashed grey verticals at `marks`
/// (storm drops). `None` when there is nothing to draw.
pub fn throughput(title: &str, series: &[Series], marks: &[f64]) -> anyhow::Result<Option<String>> {
    let lines: Vec<Series> = series
        .iter()
        .filter(|(_, p)| p.iter().any(|&(_, y)| y > 0.0))
        .cloned()
        .collect();
    let Some((xmax, (_, ymax))) = bounds(&lines) else {
        return Ok(None);
    };
    let (xmax, ymax) = (xmax.ceil().max(2.0), (ymax * 1.15).max(1.0));
    render(|root| {
        let mut chart = frame(root, title).build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the window's start")
            .y_desc("per second")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| si(*y))
            .draw()?;
        for &m in marks {
            chart.draw_series(DashedLineSeries::new(
                [(m, 0.0), (m, ymax)],
                6,
                4,
                RGBColor(120, 120, 120).stroke_width(1),
            ))?;
        }
        draw_lines(&mut chart, &lines, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// An SVG document drawn by `draw` on a white canvas.
fn render(draw: impl FnOnce(&Area) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Title and axis areas, the same for every chart.
fn frame<'a, 'b>(root: &'a Area<'b>, title: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70);
    b
}

/// Largest x and (smallest, largest) y over all points.
fn bounds(lines: &[Series]) -> Option<(f64, (f64, f64))> {
    let pts = || lines.iter().flat_map(|(_, p)| p.iter().copied());
    let xmax = pts().map(|p| p.0).reduce(f64::max)?;
    let ymin = pts().map(|p| p.1).reduce(f64::min)?;
    let ymax = pts().map(|p| p.1).reduce(f64::max)?;
    Some((xmax, (ymin, ymax)))
}

/// Draws the lines, one color each, and their legend at `at`.
fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[Series],
    at: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let err = |e| anyhow::anyhow!("{e:?}");
    for (i, (label, pts)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// 0 → "0%", 1 → "90%", 2 → "99%", 3 → "99.9%".
fn percentile_label(nines: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = (nines.ceil() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

fn ms_label(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(ms_label(0.5), "0.5");
    }

    #[test]
    fn draws_svg_with_lines() {
        let curve: Vec<(f64, f64)> = (0..=100)
            .map(|i| (i as f64 / 100.0, 50.0 + i as f64 * 10.0))
            .collect();
        let svg = latency("t", &[("a", curve)]).unwrap().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("<polyline"));
        let per_s: Vec<(f64, f64)> = (0..10).map(|s| (s as f64, 100.0 * s as f64)).collect();
        let svg = throughput("t", &[("d", per_s), ("none", vec![(0.0, 0.0)])], &[2.0])
            .unwrap()
            .unwrap();
        assert!(svg.contains("<polyline"));
        assert_eq!(latency("t", &[]).unwrap(), None);
        assert_eq!(
            throughput("t", &[("z", vec![(0.0, 0.0)])], &[]).unwrap(),
            None
        );
    }
}
