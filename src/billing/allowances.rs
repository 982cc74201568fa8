//! The allowances' cover of data usage on an invoice (see `cover`), and how late usage or
//! late allowances change it for a sealed period.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::activity::ChargeableSim;
use super::compose::Biller;
use super::cover;
use super::document::{AdjustmentKind, AdjustmentLine, AllowanceCoverLine, Invoice, TariffApplied};
use super::read::Window;
use super::BillingError;

impl Biller<'_> {
    /// `iccids` with the instant each was ACTIVATED in the window's Workspace, from its
    /// `chargeable` SIMs (the window's start for one no longer chargeable there).
    pub(super) fn activations<'s>(
        window: &Window,
        chargeable: &[ChargeableSim],
        iccids: impl IntoIterator<Item = &'s String>,
    ) -> BTreeMap<String, i64> {
        let activated: BTreeMap<&String, i64> = (chargeable.iter())
            .map(|sim| (&sim.iccid, sim.activated_at))
            .collect();
        let start = window.start.timestamp_micros();
        (iccids.into_iter())
            .map(|iccid| {
                (
                    iccid.clone(),
                    activated.get(iccid).copied().unwrap_or(start),
                )
            })
            .collect()
    }

    /// What the allowances of `sims` (ICCID: activated at, included MB before prorating)
    /// cover of the window's data usage; pooling and prorating as `tariff` says.
    pub(super) async fn allowance_cover(
        &self,
        window: &Window,
        tariff: &TariffApplied,
        sims: &BTreeMap<String, (i64, Decimal)>,
    ) -> Result<Vec<AllowanceCoverLine>, BillingError> {
        if sims.values().all(|(_, volume)| volume.is_zero()) {
            return Ok(Vec::new());
        }
        let month = (
            window.start.timestamp_micros(),
            window.end.timestamp_micros(),
        );
        let allowances = (sims.iter())
            .map(|(iccid, (at, volume))| {
                let included = cover::included_mb(*volume, tariff.allowance_prorated, month, *at);
                (iccid.clone(), included)
            })
            .collect();
        let slices = self.snapshot.data_slices(window).await?;
        let covered = cover::cover(&allowances, tariff.allowance_pooled, &slices);
        Ok((covered.into_iter())
            .map(|((reference, currency), c)| AllowanceCoverLine {
                reference,
                included_volume_mb: c.included_mb,
                covered_volume_mb: c.covered_mb,
                currency,
                amount: -c.cost,
            })
            .collect())
    }

    /// What the allowances billed for the original's period (with the `pending` allowance
    /// adjustments of the invoice being made) cover now, against what the original and the
    /// adjustments issued since credited: the difference, per allowance and currency.
    pub(super) async fn cover_adjustments(
        &self,
        original: &Invoice,
        window: &Window,
        chargeable: &[ChargeableSim],
        pending: &[AdjustmentLine],
    ) -> Result<Vec<AdjustmentLine>, BillingError> {
        let on_original: Vec<&String> = original.allowances.iter().map(|l| &l.iccid).collect();
        let mut billed = self.billed_sims(original, AdjustmentKind::Allowance, &on_original);
        // The allowances this invoice adds or withdraws count already.
        for line in pending
            .iter()
            .filter(|l| l.kind == AdjustmentKind::Allowance)
        {
            match line.amount.is_sign_negative() {
                true => billed.remove(&line.reference),
                false => billed.insert(line.reference.clone()),
            };
        }
        let tariff = &original.tariff;
        let sims = (Self::activations(window, chargeable, &billed).into_iter())
            .map(|(iccid, at)| {
                let on_original = original.allowances.iter().find(|l| l.iccid == iccid);
                let volume = on_original.map_or_else(
                    || self.price_at(window, tariff, at).allowance_volume_mb,
                    |l| l.included_volume_mb,
                );
                (iccid, (at, volume))
            })
            .collect();
        let now = self
            .allowance_cover(window, &original.tariff, &sims)
            .await?;
        let mut credited: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        let earlier = (self.issued_of(original.workspace_id))
            .filter(|d| d.period > original.period)
            .flat_map(|d| &d.adjustments)
            .filter(|a| a.period == original.period && a.kind == AdjustmentKind::AllowanceCover)
            .map(|a| (&a.reference, &a.currency, a.amount));
        let on_original =
            (original.allowance_cover.iter()).map(|l| (&l.reference, &l.currency, l.amount));
        for (reference, currency, amount) in on_original.chain(earlier) {
            *credited
                .entry((reference.clone(), currency.clone()))
                .or_default() += amount;
        }
        let mut due: BTreeMap<(String, String), (Decimal, String)> = BTreeMap::new();
        for line in &now {
            let description = format!(
                "Allowance {}: now covers {} of {} MB of data",
                line.reference, line.covered_volume_mb, line.included_volume_mb
            );
            due.insert(
                (line.reference.clone(), line.currency.clone()),
                (line.amount, description),
            );
        }
        for key in credited.keys() {
            due.entry(key.clone()).or_insert_with(|| {
                let description = format!("Allowance {}: covers no data now", key.0);
                (Decimal::ZERO, description)
            });
        }
        Ok((due.into_iter())
            .filter_map(|((reference, currency), (now, description))| {
                let before = credited
                    .get(&(reference.clone(), currency.clone()))
                    .copied();
                let amount = now - before.unwrap_or_default();
                (!amount.is_zero()).then(|| AdjustmentLine {
                    period: original.period.clone(),
                    kind: AdjustmentKind::AllowanceCover,
                    reference,
                    description,
                    currency,
                    amount,
                })
            })
            .collect())
    }
}
