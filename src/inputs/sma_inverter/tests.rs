use super::plan::{Block, Plan, MAX_READ};
use super::registers::{self, decode, DecodeError, Kind, Register, Scale, DEFAULT};
use super::*;
use crate::inputs::testutil::sample_options;

fn ok(kind: Kind, words: &[u16]) -> Option<f64> {
    decode(kind, words).expect("enough words")
}

#[test]
fn u16_decodes_and_ffff_is_nan() {
    assert_eq!(ok(Kind::U16, &[0]), Some(0.0));
    assert_eq!(ok(Kind::U16, &[0xFFFE]), Some(65534.0));
    assert_eq!(ok(Kind::U16, &[0xFFFF]), None);
}

#[test]
fn s16_decodes_signed_and_8000_is_nan() {
    assert_eq!(ok(Kind::S16, &[0x7FFF]), Some(32767.0));
    assert_eq!(ok(Kind::S16, &[0xFFFF]), Some(-1.0));
    assert_eq!(ok(Kind::S16, &[0x8001]), Some(-32767.0));
    assert_eq!(ok(Kind::S16, &[0x8000]), None);
}

#[test]
fn u32_is_high_word_first_and_all_ones_is_nan() {
    assert_eq!(ok(Kind::U32, &[0x0001, 0x0002]), Some(65538.0));
    assert_eq!(ok(Kind::U32, &[0xFFFF, 0xFFFE]), Some(4_294_967_294.0));
    assert_eq!(ok(Kind::U32, &[0xFFFF, 0xFFFF]), None);
    // 0x80000000 is a real U32 value (only S32 treats it as NaN).
    assert_eq!(ok(Kind::U32, &[0x8000, 0x0000]), Some(2_147_483_648.0));
}

#[test]
fn s32_decodes_negative_values_and_both_markers_are_nan() {
    assert_eq!(ok(Kind::S32, &[0xFFFF, 0xFFE7]), Some(-25.0));
    assert_eq!(ok(Kind::S32, &[0xFFFF, 0xFB2E]), Some(-1234.0));
    assert_eq!(ok(Kind::S32, &[0x0001, 0x0000]), Some(65536.0));
    assert_eq!(ok(Kind::S32, &[0x8000, 0x0001]), Some(-2_147_483_647.0));
    assert_eq!(ok(Kind::S32, &[0x8000, 0x0000]), None);
    assert_eq!(ok(Kind::S32, &[0x7FFF, 0xFFFF]), None);
}

#[test]
fn u64_uses_four_words_and_all_ones_is_nan() {
    assert_eq!(
        ok(Kind::U64, &[0x0000, 0x0000, 0x075B, 0xCD15]),
        Some(123_456_789.0)
    );
    assert_eq!(
        ok(Kind::U64, &[0x0001, 0x0000, 0x0000, 0x0000]),
        Some(281_474_976_710_656.0)
    );
    assert_eq!(ok(Kind::U64, &[0xFFFF; 4]), None);
    // A zero total is a value, not a marker.
    assert_eq!(ok(Kind::U64, &[0; 4]), Some(0.0));
}

#[test]
fn enum_keeps_the_low_24_bits_and_fffffd_is_nan() {
    assert_eq!(ok(Kind::Enum, &[0x0000, 307]), Some(307.0));
    assert_eq!(ok(Kind::Enum, &[0x0100, 0x0033]), Some(51.0));
    assert_eq!(ok(Kind::Enum, &[0x00FF, 0xFFFD]), None);
    assert_eq!(ok(Kind::Enum, &[0xFFFF, 0xFFFF]), None);
}

#[test]
fn too_few_words_are_an_error_not_a_value() {
    assert_eq!(
        decode(Kind::U64, &[1, 2, 3]),
        Err(DecodeError::Short { needed: 4, got: 3 })
    );
    assert_eq!(
        decode(Kind::S32, &[1]),
        Err(DecodeError::Short { needed: 2, got: 1 })
    );
    assert_eq!(
        decode(Kind::U16, &[]),
        Err(DecodeError::Short { needed: 1, got: 0 })
    );
}

#[test]
fn decimal_scales_divide_so_values_print_as_written() {
    assert_eq!(Scale::new(0.01), Scale::Div(100.0));
    assert_eq!(Scale::new(0.01).apply(23012.0), 230.12);
    assert_eq!(Scale::new(0.001).apply(-1234.0), -1.234);
    assert_eq!(Scale::new(0.1).apply(-25.0), -2.5);
    assert_eq!(Scale::new(2.0).apply(21.0), 42.0);
    assert_eq!(Scale::new(0.25), Scale::Div(4.0));
}

#[test]
fn condition_codes_map_to_labels() {
    assert_eq!(registers::condition_label(307.0), "ok");
    assert_eq!(registers::condition_label(455.0), "warning");
    assert_eq!(registers::condition_label(35.0), "fault");
    assert_eq!(registers::condition_label(303.0), "off");
    assert_eq!(registers::condition_label(1.0), "unknown");
}

fn default_regs() -> Vec<Register> {
    registers::resolve(None, false).unwrap()
}

#[test]
fn the_default_table_is_read_in_four_requests() {
    let regs = default_regs();
    assert_eq!(regs.len(), DEFAULT.len());
    let plan = Plan::new(&regs);
    let spans: Vec<(u16, u16)> = plan.blocks.iter().map(|b| (b.start, b.count)).collect();
    // 30201..30218, 30513..30520, 30769..30804, 30953..30962. Four is the fewest: the gaps
    // between these groups are wider than the 125 registers one request may cover.
    assert_eq!(spans, [(30201, 18), (30513, 8), (30769, 36), (30953, 10)]);
    assert_eq!(plan.words(), 72);
    for pair in plan.blocks.windows(2) {
        let end_of_first = pair[0].start as u32 + pair[0].count as u32;
        assert!(pair[1].start as u32 + pair[1].count as u32 - pair[0].start as u32 > MAX_READ);
        assert!(end_of_first <= pair[1].start as u32);
    }
}

#[test]
fn battery_registers_join_the_dc_block_and_add_one_request() {
    let regs = registers::resolve(None, true).unwrap();
    let plan = Plan::new(&regs);
    let spans: Vec<(u16, u16)> = plan.blocks.iter().map(|b| (b.start, b.count)).collect();
    assert_eq!(
        spans,
        [
            (30201, 18),
            (30513, 8),
            (30769, 84),
            (30953, 10),
            (31393, 4)
        ]
    );
}

fn reg(address: u16, kind: Kind) -> Register {
    Register {
        address,
        kind,
        scale: Scale::new(1.0),
        name: format!("r{address}"),
        labels: Vec::new(),
        role: registers::Role::Plain,
    }
}

#[test]
fn a_block_never_exceeds_125_registers_nor_splits_a_value() {
    // 30000 (4 words) … 30121 (4 words) end at 30125: 125 words exactly; 30122 would not fit.
    let regs = vec![reg(30000, Kind::U64), reg(30121, Kind::U64), reg(30125, Kind::U64)];
    let plan = Plan::new(&regs);
    assert_eq!(
        plan.blocks,
        [
            Block {
                start: 30000,
                count: 125,
                regs: 0..2,
                split: false
            },
            Block {
                start: 30125,
                count: 4,
                regs: 2..3,
                split: false
            }
        ]
    );
    let regs = vec![reg(30000, Kind::U16), reg(30124, Kind::U32)];
    let plan = Plan::new(&regs);
    assert_eq!(plan.blocks.len(), 2, "a U32 at 30124..30125 would make 126 registers");
}

#[test]
fn a_split_block_remembers_rejected_registers_and_reads_adjacent_runs() {
    let regs = default_regs();
    let mut plan = Plan::new(&regs);
    let dc = &plan.blocks[2];
    assert_eq!(dc.start, 30769);
    // 30769 … 30787 are adjacent; 30795 rejected; 30803 alone.
    let ok: Vec<bool> = dc.regs.clone().map(|i| regs[i].address != 30795).collect();
    let rejected = plan.split(2, &regs, &ok);
    assert_eq!(rejected, [30795]);
    let spans: Vec<(u16, u16, bool)> = plan
        .blocks
        .iter()
        .map(|b| (b.start, b.count, b.split))
        .collect();
    assert_eq!(
        spans,
        [
            (30201, 18, false),
            (30513, 8, false),
            (30769, 20, true),
            (30803, 2, true),
            (30953, 10, false)
        ]
    );
    let i = regs.iter().position(|r| r.address == 30795).unwrap();
    assert!(plan.rejected[i]);
}

#[test]
fn custom_registers_add_to_the_default_table_and_overlaps_are_refused() {
    let cfg: Config = yaml_serde::from_str(
        "inverters: [{name: a, host: 127.0.0.1}]\nregisters:\n  - default\n  - {address: 30805, type: s32, name: sma_inverter_reactive_power_var, unit: var}\n  - {address: 40000, type: u16, scale: 0.5, name: x, labels: {kind: test}}\n",
    )
    .unwrap();
    let Registers::List(list) = &cfg.registers else {
        panic!("a list")
    };
    let regs = registers::resolve(Some(list), false).unwrap();
    assert_eq!(regs.len(), DEFAULT.len() + 2);
    let x = regs.iter().find(|r| r.name == "x").unwrap();
    assert_eq!(x.labels, [("kind".to_string(), "test".to_string())]);
    assert_eq!(x.scale, Scale::Div(2.0));

    let overlapping: Config = yaml_serde::from_str(
        "inverters: [{name: a, host: 127.0.0.1}]\nregisters: [default, {address: 30776, type: u16, name: y}]\n",
    )
    .unwrap();
    let Registers::List(list) = &overlapping.registers else {
        panic!("a list")
    };
    let e = registers::resolve(Some(list), false).unwrap_err();
    assert!(e.contains("30775") && e.contains("30776"), "{e}");
}

#[test]
fn config_errors_are_clear() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    let err = |yaml: &str| {
        let cfg: Config = yaml_serde::from_str(yaml).unwrap();
        build(&cfg, &ctx).err().expect("an error").to_string()
    };
    assert!(err("inverters: []").contains("at least one inverter"));
    assert!(err("inverters: [{name: a, host: h}, {name: a, host: i}]").contains("twice"));
    assert!(err("inverters: [{name: a, host: h}]\nregisters: [{address: 1, type: u16, name: x, labels: {serial: s}}]").contains("serial"));
    assert!(yaml_serde::from_str::<Config>("inverters: [{name: a, host: h, unit_id: 0}]").is_err());
    assert!(yaml_serde::from_str::<Config>("inverters: [{name: a, host: h, unit_id: sometimes}]").is_err());
    assert!(yaml_serde::from_str::<Config>("inverters: [{name: a, host: h, bogus: 1}]").is_err());
    let auto: Config = yaml_serde::from_str("inverters: [{name: a, host: h, unit_id: auto}]").unwrap();
    assert_eq!(auto.inverters[0].unit_id, UnitId::Auto);
    assert_eq!(auto.inverters[0].port, 502);
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    let now = std::time::Instant::now();
    let mut retry = conn::Retry::default();
    let delays: Vec<u64> = (0..9).map(|_| retry.failed(now).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    for _ in 0..1000 {
        retry.failed(now);
    }
    assert_eq!(retry.failed(now).as_secs(), 60);
    retry.succeeded();
    assert!(retry.ready(now));
    assert_eq!(retry.failed(now).as_secs(), 1);
}

#[test]
fn the_sample_parses_and_builds() {
    let cfg: Config = sample_options(SAMPLE);
    assert_eq!(cfg.inverters.len(), 1);
    assert_eq!(cfg.timeout.0, Duration::from_secs(3));
    assert!(build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).is_ok());
}

#[test]
fn an_unreachable_inverter_reports_down_without_samples() {
    // A closed loopback port: connect fails at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg: Config = yaml_serde::from_str(&format!(
        "inverters: [{{name: a, host: 127.0.0.1, port: {port}}}]\ntimeout: 1s"
    ))
    .unwrap();
    let input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).unwrap();
    let mut h = crate::inputs::testutil::Harness::new(Box::new(input));
    let c = h.collect(1_700_000_000_000);
    assert_eq!(c.samples.len(), 1, "{:?}", c.samples);
    assert_eq!(c["sma_inverter_up{inverter=a}"], 0.0);
    assert!(c.error.is_none(), "silence is logged by the input, not an error");
}
