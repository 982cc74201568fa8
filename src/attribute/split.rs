/// Splits `units` (non-negative integer units of an amount's scale) into parts proportional
/// to `weights` (slice durations in ms): part i gets floor(units * w_i / W), and the units
/// left over go one each to the parts with the largest remainders, ties to the earlier part.
/// The parts always sum to `units` exactly.
pub fn split_pro_rata(units: i128, weights: &[i64]) -> Vec<i128> {
    let total: i128 = weights.iter().map(|&w| i128::from(w)).sum();
    if weights.len() <= 1 || total <= 0 {
        let mut parts = vec![0; weights.len()];
        if let Some(first) = parts.first_mut() {
            *first = units;
        }
        return parts;
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let product = units * i128::from(w);
        parts.push(product / total);
        remainders.push((product % total, i));
    }
    let leftover = units - parts.iter().sum::<i128>();
    // Largest remainder first; among equal remainders the earlier slice first.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(leftover as usize) {
        parts[i] += 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leftover_goes_to_largest_remainder_then_earliest() {
        assert_eq!(split_pro_rata(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_pro_rata(2, &[1, 2]), vec![1, 1]);
        assert_eq!(split_pro_rata(7, &[5]), vec![7]);
    }

    proptest! {
        #[test]
        fn parts_sum_exactly_and_stay_within_one_unit_of_the_ideal(
            units in 0i128..1_000_000_000_000_000,
            weights in prop::collection::vec(1i64..10_000_000, 1..8),
        ) {
            let parts = split_pro_rata(units, &weights);
            prop_assert_eq!(parts.iter().sum::<i128>(), units);
            let total: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            for (part, &w) in parts.iter().zip(&weights) {
                let floor = units * i128::from(w) / total;
                prop_assert!(*part == floor || *part == floor + 1);
            }
        }
    }
}
