//! The columns `usage` and `quarantine` share: one row per slice of a usage record (the
//! part of it in one owner's time), and what marks a row as a correction.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int16Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};

use crate::attribute::Slice;
use crate::domain::{UsageRecord, UtcMillis};
use crate::lake::schema::{MONEY_TYPE, VOLUME_TYPE};

fn decimal_builder(data_type: &arrow::datatypes::DataType, rows: usize) -> Decimal128Builder {
    let arrow::datatypes::DataType::Decimal128(p, s) = data_type else {
        unreachable!("volume and money columns are Decimal128")
    };
    Decimal128Builder::with_capacity(rows)
        .with_precision_and_scale(*p, *s)
        .unwrap_or_default()
}

fn timestamp_builder(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

/// What marks a row as a correction of rows written earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrectionMark {
    /// The ids of the late lifecycle events that caused the correction.
    pub cause: String,
    /// On a reversal: the slice it cancels.
    pub reverses_slice: Option<i16>,
}

/// The columns `usage` and `quarantine` share.
pub(super) struct SliceColumns {
    usage_date: Date32Builder,
    record_id: Int64Builder,
    slice: Int16Builder,
    iccid: StringBuilder,
    traffic_type: StringBuilder,
    start_time: TimestampMicrosecondBuilder,
    end_time: TimestampMicrosecondBuilder,
    volume_rx: Decimal128Builder,
    volume_tx: Decimal128Builder,
    volume_total: Decimal128Builder,
    cost: Decimal128Builder,
    currency: StringBuilder,
    operator_name: StringBuilder,
    mcc: StringBuilder,
    mnc: StringBuilder,
    country_name: StringBuilder,
    imsi: StringBuilder,
    source: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    correction: StringBuilder,
    reverses_slice: Int16Builder,
    ingested_at_value: i64,
    pub(super) len: usize,
}

impl SliceColumns {
    /// Room for `rows` rows up front: a chunk's rows are built in one go, and growing
    /// twenty buffers from empty for each chunk was a measurable cost.
    pub(super) fn with_capacity(ingested_at: UtcMillis, rows: usize) -> Self {
        let text = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let decimal = |data_type| decimal_builder(data_type, rows);
        SliceColumns {
            usage_date: Date32Builder::with_capacity(rows),
            record_id: Int64Builder::with_capacity(rows),
            slice: Int16Builder::with_capacity(rows),
            iccid: text(20),
            traffic_type: text(4),
            start_time: timestamp_builder(rows),
            end_time: timestamp_builder(rows),
            volume_rx: decimal(&VOLUME_TYPE),
            volume_tx: decimal(&VOLUME_TYPE),
            volume_total: decimal(&VOLUME_TYPE),
            cost: decimal(&MONEY_TYPE),
            currency: text(3),
            operator_name: text(12),
            mcc: text(3),
            mnc: text(3),
            country_name: text(12),
            imsi: text(15),
            source: text(32),
            ingested_at: timestamp_builder(rows),
            correction: StringBuilder::with_capacity(rows, 0),
            reverses_slice: Int16Builder::with_capacity(rows),
            ingested_at_value: ingested_at.micros(),
            len: 0,
        }
    }

    pub(super) fn append(&mut self, record: &UsageRecord, slice: &Slice, source: &str) {
        self.append_marked(record, slice, source, None);
    }

    pub(super) fn append_marked(
        &mut self,
        record: &UsageRecord,
        slice: &Slice,
        source: &str,
        mark: Option<&CorrectionMark>,
    ) {
        self.usage_date.append_value(slice.start.utc_days());
        self.record_id.append_value(record.id.0);
        self.slice.append_value(slice.index);
        self.iccid.append_value(record.iccid.as_str());
        self.traffic_type.append_value(record.traffic_type.as_str());
        self.start_time.append_value(slice.start.micros());
        self.end_time.append_value(slice.end.micros());
        self.volume_rx.append_value(slice.rx.units());
        self.volume_tx.append_value(slice.tx.units());
        self.volume_total.append_value(slice.total().units());
        self.cost.append_value(slice.cost.units());
        self.currency.append_value(record.currency.as_str());
        let op = record.operator.as_ref();
        self.operator_name
            .append_option(op.and_then(|o| o.name.as_deref()));
        self.mcc.append_option(op.and_then(|o| o.mcc.as_deref()));
        self.mnc.append_option(op.and_then(|o| o.mnc.as_deref()));
        self.country_name
            .append_option(op.and_then(|o| o.country_name.as_deref()));
        self.imsi.append_option(record.imsi.as_deref());
        self.source.append_value(source);
        self.ingested_at.append_value(self.ingested_at_value);
        self.correction
            .append_option(mark.map(|m| m.cause.as_str()));
        self.reverses_slice
            .append_option(mark.and_then(|m| m.reverses_slice));
        self.len += 1;
    }

    pub(super) fn finish(&mut self) -> Vec<ArrayRef> {
        self.len = 0;
        vec![
            Arc::new(self.usage_date.finish()),
            Arc::new(self.record_id.finish()),
            Arc::new(self.slice.finish()),
            Arc::new(self.iccid.finish()),
            Arc::new(self.traffic_type.finish()),
            Arc::new(self.start_time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.volume_rx.finish()),
            Arc::new(self.volume_tx.finish()),
            Arc::new(self.volume_total.finish()),
            Arc::new(self.cost.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.operator_name.finish()),
            Arc::new(self.mcc.finish()),
            Arc::new(self.mnc.finish()),
            Arc::new(self.country_name.finish()),
            Arc::new(self.imsi.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.correction.finish()),
            Arc::new(self.reverses_slice.finish()),
        ]
    }
}
