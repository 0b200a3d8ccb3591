"""stats.py against values published elsewhere: R's documented examples, Garwood's table, closed forms."""

import math

import pytest

from crash_aggregates.stats import (
    benjamini_hochberg,
    binomial_test,
    clopper_pearson,
    crash_rate,
    per_1000_hours,
    rate_interval,
    rate_ratio_test,
)

# Exact 95% limits for a Poisson count (exposure 1), as tabulated from Garwood (1936)
# in epidemiology textbooks (e.g. Sahai & Khurshid, Ulm 1990).
GARWOOD_95 = [
    (0, 0.0, 3.6889),
    (1, 0.0253, 5.5716),
    (2, 0.2422, 7.2247),
    (3, 0.6186, 8.7673),
    (4, 1.0899, 10.2416),
    (5, 1.6235, 11.6683),
    (10, 4.7954, 18.3904),
    (20, 12.2165, 30.8884),
]


@pytest.mark.parametrize("events, lower, upper", GARWOOD_95)
def test_rate_interval_matches_garwood_table(events, lower, upper):
    estimate, low, high = rate_interval(events, 1.0)
    assert estimate == events
    # The table is rounded to four decimals.
    assert (low, high) == pytest.approx((lower, upper), abs=1e-4)


@pytest.mark.parametrize(
    "events, exposure, level, expected",
    [
        # R: poisson.test(137, 24.19893) (help page example: SMR, Welsh nickel workers)
        (137, 24.19893, 0.95, (5.661407, 4.753125, 6.692709)),
        # Closed forms at 0 and 1 events: upper(0) = -ln(alpha/2), lower(1) = -ln(1 - alpha/2).
        (0, 1.0, 0.99, (0.0, 0.0, -math.log(0.005))),
        (0, 1.0, 0.90, (0.0, 0.0, -math.log(0.05))),
        (0, 250.0, 0.95, (0.0, 0.0, -math.log(0.025) / 250)),
        (1, 2.0, 0.95, (0.5, -math.log(0.975) / 2, 5.5716 / 2)),
    ],
)
def test_rate_interval_known_values(events, exposure, level, expected):
    assert rate_interval(events, exposure, level) == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_rate_interval_zero_exposure_tells_nothing():
    for events in (0, 7):
        estimate, lower, upper = rate_interval(events, 0)
        assert math.isnan(estimate) and lower == 0 and upper == math.inf


def test_rate_interval_huge_counts_approach_the_normal_interval():
    events = 10**12
    estimate, lower, upper = rate_interval(events, 2e12)
    half_width = 1.959964 * math.sqrt(events) / 2e12
    assert estimate == 0.5
    assert lower == pytest.approx(0.5 - half_width, rel=1e-9)
    assert upper == pytest.approx(0.5 + half_width, rel=1e-9)


@pytest.mark.parametrize(
    "events, exposure, level",
    [(-1, 1.0, 0.95), (1.5, 1.0, 0.95), (1, -1.0, 0.95), (1, math.nan, 0.95), (1, math.inf, 0.95), (1, 1.0, 1.0)],
)
def test_rate_interval_rejects_impossible_input(events, exposure, level):
    with pytest.raises(ValueError):
        rate_interval(events, exposure, level)


@pytest.mark.parametrize(
    "args, expected",
    [
        # R: poisson.test(c(11, 6+8+7), c(800, 1083+1050+878)) (help page: eba1977, Fredericia vs
        # the other three cities): rate ratio 1.971488, 95% CI 0.8584264 4.2772659, p-value = 0.07967.
        ((11, 800, 21, 3011), (1.971488, 0.8584264, 4.2772659, 0.07967)),
        # R: binom.test(682, 925, p = 0.75) (help page: Mendel's peas): p-value = 0.3825,
        # CI 0.7076683 0.7654066. As rates: 682 events in 3 units against 243 in 1, and the
        # proportion interval mapped to a ratio p / (1 - p) / 3.
        (
            (682, 3.0, 243, 1.0),
            (682 / 3 / 243, 0.7076683 / 0.2923317 / 3, 0.7654066 / 0.2345934 / 3, 0.3825),
        ),
        # The mirror image: the other tail of the same binomial.
        (
            (243, 1.0, 682, 3.0),
            (243 * 3 / 682, 0.2345934 / 0.7654066 * 3, 0.2923317 / 0.7076683 * 3, 0.3825),
        ),
    ],
)
def test_rate_ratio_test_matches_r(args, expected):
    ratio, lower, upper, p_value = rate_ratio_test(*args)
    assert (ratio, lower, upper) == pytest.approx(expected[:3], rel=1e-6)
    assert p_value == pytest.approx(expected[3], abs=5e-5)


def test_rate_ratio_test_equal_rates_is_not_significant():
    ratio, lower, upper, p_value = rate_ratio_test(50, 10.0, 50, 10.0)
    assert ratio == 1.0 and lower < 1 < upper and p_value == 1.0


@pytest.mark.parametrize(
    "args, ratio, lower, upper, p_value",
    [
        ((0, 5.0, 0, 5.0), math.nan, 0.0, math.inf, 1.0),
        ((3, 0.0, 4, 5.0), math.nan, 0.0, math.inf, 1.0),
        ((3, 5.0, 4, 0.0), math.nan, 0.0, math.inf, 1.0),
    ],
)
def test_rate_ratio_test_without_information(args, ratio, lower, upper, p_value):
    result = rate_ratio_test(*args)
    assert math.isnan(result.ratio) and (result.lower, result.upper, result.p_value) == (lower, upper, p_value)


def test_rate_ratio_test_one_side_without_events():
    # 0 events against 10 in equal exposure: the exact p-value is 2 * 0.5**10 (both tails).
    ratio, lower, upper, p_value = rate_ratio_test(0, 1.0, 10, 1.0)
    assert ratio == 0 and lower == 0 and 0 < upper < 1
    assert p_value == pytest.approx(2 * 0.5**10)
    ratio, lower, upper, p_value = rate_ratio_test(10, 1.0, 0, 1.0)
    assert ratio == math.inf and lower > 1 and upper == math.inf
    assert p_value == pytest.approx(2 * 0.5**10)


def test_rate_ratio_test_huge_counts_approach_the_normal_interval():
    # A billion events a side, equal rates: log ratio ~ N(0, 1/a + 1/b).
    n = 10**9
    ratio, lower, upper, p_value = rate_ratio_test(n, 1e6, n, 1e6)
    se = math.sqrt(2 / n)
    assert ratio == 1.0
    assert math.log(lower) == pytest.approx(-1.959964 * se, rel=1e-3)
    assert math.log(upper) == pytest.approx(1.959964 * se, rel=1e-3)
    assert p_value == pytest.approx(1.0)
    # A 1% increase on a billion events is overwhelming evidence.
    assert rate_ratio_test(n + n // 100, 1e6, n, 1e6).p_value < 1e-100


# Benjamini & Hochberg (1995), section 4: fifteen p-values; at q = 0.05 the first four are discoveries.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240]
BH_1995 += [0.4262, 0.5719, 0.6528, 0.7590, 1.0000]


def test_benjamini_hochberg_paper_example():
    adjusted = benjamini_hochberg(BH_1995)
    assert [p <= 0.05 for p in adjusted] == [True] * 4 + [False] * 11


@pytest.mark.parametrize(
    "p_values, adjusted",
    [
        ([0.01, 0.02, 0.03, 0.04, 0.05], [0.05] * 5),
        # By hand: sorted 0.001, 0.03, 0.04, 0.8 -> 0.004, min(0.06, 0.0533), 0.0533, 0.8; input order kept.
        ([0.001, 0.8, 0.04, 0.03], [0.004, 0.8, 0.04 * 4 / 3, 0.04 * 4 / 3]),
        ([0.5], [0.5]),
        ([], []),
    ],
)
def test_benjamini_hochberg_by_hand(p_values, adjusted):
    assert benjamini_hochberg(p_values) == pytest.approx(adjusted)


def test_benjamini_hochberg_rejects_non_probabilities():
    with pytest.raises(ValueError):
        benjamini_hochberg([0.5, 1.5])


def test_per_1000_hours():
    assert per_1000_hours(3, 1500.0) == 2.0
    assert math.isnan(per_1000_hours(3, 0))
    assert crash_rate(137, 24.19893 * 1000) == pytest.approx((5.661407, 4.753125, 6.692709), rel=1e-6)


# The binomial test and interval against scipy's own, independent implementations, over a grid
# that takes in both tails, the middle, ties of probability and large counts.
GRID = [
    (x, n, p)
    for n in (1, 2, 5, 10, 37, 100, 1000, 12_345, 1_000_000)
    for p in (0.01, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.99)
    for x in sorted(
        {0, 1, n // 7, round(n * p) - 1, round(n * p), round(n * p) + 1, n // 2, n - 1, n} & set(range(n + 1))
    )
]


@pytest.mark.parametrize("x, n, p", GRID)
def test_binomial_test_and_interval_match_scipy(x, n, p):
    from scipy.stats import binomtest

    reference = binomtest(x, n, p)
    # Ties are decided alike (checked with exact arithmetic); the tails differ in the ninth digit.
    assert binomial_test(x, n, p) == pytest.approx(reference.pvalue, rel=1e-8, abs=1e-300)
    low, high = reference.proportion_ci(confidence_level=0.95, method="exact")
    # scipy finds these limits by root finding (brentq, to about 1e-8 relative); ours are betaincinv,
    # checked to 1e-12 against the closed forms below.
    assert clopper_pearson(x, n) == pytest.approx((low, high), rel=1e-7, abs=1e-15)


@pytest.mark.parametrize("n", [1, 2, 10, 12_345, 1_000_000, 10**9])
def test_clopper_pearson_closed_forms(n):
    # At 0 and 1 successes (and n - 1, n) the limits solve (1 - p)^n = a or p^n = a in closed form.
    a = 0.025
    assert clopper_pearson(0, n) == pytest.approx((0.0, -math.expm1(math.log(a) / n)), rel=1e-12)
    assert clopper_pearson(n, n) == pytest.approx((math.exp(math.log(a) / n), 1.0), rel=1e-12)
    if n > 1:
        assert clopper_pearson(1, n)[0] == pytest.approx(-math.expm1(math.log1p(-a) / n), rel=1e-12)
        assert clopper_pearson(n - 1, n)[1] == pytest.approx(math.exp(math.log1p(-a) / n), rel=1e-12)


def test_binomial_test_edges():
    assert binomial_test(0, 0, 0.5) == 1.0
    assert binomial_test(0, 10, 0.0) == 1.0 and binomial_test(1, 10, 0.0) == 0.0
    assert binomial_test(10, 10, 1.0) == 1.0 and binomial_test(9, 10, 1.0) == 0.0
    with pytest.raises(ValueError):
        binomial_test(11, 10, 0.5)
