//! The deterministic AutoCorp generator: seven tables with the reference row counts (or a
//! multiple of them, `--scale`), the same on every run and every platform (a seeded splitmix64,
//! no system randomness).
//!
//! The data is built to be checked: every 47th email and 11th phone is NULL, cancelled orders
//! total 0.00, and names carry accents and apostrophes, so each check kind has something to find.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, RecordBatch,
};

use super::columns::{text, timestamps};
use super::{TableData, ROW_COUNTS};

/// A small deterministic generator (splitmix64): same seed, same data, on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "Mårten",
    "Søren",
    "François",
    "Aoife",
    "Chloé",
    "Ömer",
    "Ana",
    "John",
    "Mei",
    "Priya",
    "Kwame",
    "Olga",
    "Dmitri",
    "Sofía",
    "Liam",
    "Noah",
    "Emma",
    "Ava",
    "Hiroshi",
    "Fatima",
    "Renée",
    "Jürgen",
];
const LAST_NAMES: &[&str] = &[
    "Núñez",
    "Müller",
    "O'Brien",
    "Øvergaard",
    "García",
    "Smith",
    "Nguyễn",
    "Kowalski",
    "Dubois",
    "Johansson",
    "Patel",
    "Okafor",
    "Rossi",
    "Yılmaz",
    "Schröder",
    "Brown",
    "Tanaka",
    "Silva",
    "D'Angelo",
    "Łęcki",
];
const CITIES: &[(&str, &str)] = &[
    ("Austin", "TX"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
    ("Boston", "MA"),
    ("Miami", "FL"),
    ("Phoenix", "AZ"),
    ("Portland", "OR"),
    ("Chicago", "IL"),
    ("San José", "CA"),
    ("Albuquerque", "NM"),
    ("Coeur d'Alene", "ID"),
];
const CATEGORIES: &[&str] = &[
    "Brakes",
    "Engine",
    "Suspension",
    "Electrical",
    "Exhaust",
    "Cooling",
    "Filters",
    "Lighting",
];
const MANUFACTURERS: &[&str] = &[
    "Bosch",
    "Denso",
    "ACDelco",
    "Brembo",
    "Valeo",
    "Mahle",
    "NGK",
    "Febi Bilstein",
];
const PART_WORDS: &[&str] = &[
    "Pad Set",
    "Rotor",
    "Spark Plug",
    "Oil Filter",
    "Shock Absorber",
    "Alternator",
    "Radiator",
    "Headlamp",
];
const SERVICES: &[&str] = &[
    "Oil change",
    "Brake service",
    "Tire rotation",
    "Engine diagnostics",
    "A/C recharge",
    "Wheel alignment",
];
const VEHICLES: &[&str] = &["sedan", "SUV", "pickup", "hybrid", "EV", "van"];
const STATUSES: &[&str] = &["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];

/// Declares an empty column (a `Vec`) for each name; the loop below fills them row by row.
macro_rules! columns {
    ($($name:ident),+) => {
        $(let mut $name = Vec::new();)+
    };
}

fn micros(date: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .timestamp_micros()
}

fn money(values: Vec<i128>, precision: u8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(precision, 2)
            .expect("valid decimal"),
    )
}

fn ints(values: Vec<i32>) -> ArrayRef {
    Arc::new(Int32Array::from(values))
}

fn ids(n: usize) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(1..=n as i32))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(
        columns
            .into_iter()
            .map(|(name, array)| (name.to_string(), array)),
    )
    .expect("consistent columns")
}

/// Generates all seven tables in foreign-key load order, with the reference row counts.
pub fn generate() -> Vec<TableData> {
    generate_scaled(1)
}

/// Generates all seven tables with `scale` times the reference row counts: the same
/// distributions (foreign keys drawn over the scaled tables, every 47th email NULL, ...), keys
/// `1..=rows` as at scale 1. Scale 1 is exactly [`generate`]'s data; at larger scales even the
/// first rows differ from it (the tables draw from one random stream in turn).
///
/// # Panics
/// If `scale` is 0 or the keys would not fit PostgreSQL's `integer`: callers check it against
/// [`MAX_SCALE`](super::MAX_SCALE).
pub fn generate_scaled(scale: usize) -> Vec<TableData> {
    assert!(
        (1..=super::MAX_SCALE).contains(&scale),
        "AutoCorp scale {scale} is outside 1..={}",
        super::MAX_SCALE
    );
    let mut rng = Rng(0x00A0_70C0_4B52_2026);
    let epoch = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let base = micros(epoch);
    let day = 86_400_000_000i64;
    let stamp = |rng: &mut Rng| base + rng.between(0, 300 * day);
    let count = |name: &str| {
        ROW_COUNTS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known table")
            .1
            * scale
    };

    let n = count("customers");
    columns!(first, last, email, phone, city, state, created, updated);
    for id in 1..=n {
        let f = rng.pick(FIRST_NAMES);
        let l = rng.pick(LAST_NAMES);
        let (c, s) = CITIES[(rng.next() % CITIES.len() as u64) as usize];
        let login: String = format!("{f}.{l}")
            .to_lowercase()
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '.')
            .collect();
        first.push(Some(f.to_string()));
        last.push(Some(l.to_string()));
        email.push((id % 47 != 0).then(|| format!("{login}.{id}@example.com")));
        phone.push((id % 11 != 0).then(|| {
            format!(
                "+1-555-{:03}-{:04}",
                rng.between(100, 999),
                rng.between(0, 9999)
            )
        }));
        city.push(Some(c));
        state.push(Some(s));
        let t = stamp(&mut rng);
        created.push(t);
        updated.push(t + rng.between(0, 30 * day));
    }
    let customers = batch(vec![
        ("customer_id", ids(n)),
        ("first_name", text(first)),
        ("last_name", text(last)),
        ("email", text(email)),
        ("phone", text(phone)),
        ("city", text(city)),
        ("state", text(state)),
        ("created_at", timestamps(created)),
        ("updated_at", timestamps(updated)),
    ]);

    let n = count("auto_parts");
    columns!(
        number,
        name,
        category,
        maker,
        price,
        stock,
        discontinued,
        updated
    );
    for id in 1..=n {
        let cat = rng.pick(CATEGORIES);
        number.push(Some(format!("AP-{id:05}")));
        name.push(Some(format!("{cat} {}", rng.pick(PART_WORDS))));
        category.push(Some(cat));
        maker.push(Some(rng.pick(MANUFACTURERS)));
        price.push(rng.between(499, 149_999) as i128);
        stock.push(rng.between(0, 500) as i32);
        discontinued.push(id % 13 == 0);
        updated.push(stamp(&mut rng));
    }
    let auto_parts = batch(vec![
        ("part_id", ids(n)),
        ("part_number", text(number)),
        ("part_name", text(name)),
        ("category", text(category)),
        ("manufacturer", text(maker)),
        ("unit_price", money(price, 10)),
        ("stock_quantity", ints(stock)),
        ("discontinued", Arc::new(BooleanArray::from(discontinued))),
        ("updated_at", timestamps(updated)),
    ]);
    let parts = n as i64;

    let n = count("service");
    columns!(name, description, hours, price, updated);
    for id in 1..=n {
        let what = rng.pick(SERVICES);
        let vehicle = rng.pick(VEHICLES);
        name.push(Some(format!("{what} — {vehicle} #{id}")));
        description.push(
            (id % 9 != 0).then(|| format!("{what} for a {vehicle}, parts and labour included")),
        );
        hours.push(rng.between(25, 800) as i128);
        price.push(rng.between(2_500, 120_000) as i128);
        updated.push(stamp(&mut rng));
    }
    let service = batch(vec![
        ("service_id", ids(n)),
        ("service_name", text(name)),
        ("description", text(description)),
        ("labor_hours", money(hours, 5)),
        ("price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);
    let services = n as i64;

    let n = count("service_parts");
    columns!(service_id, part_id, quantity, updated);
    for i in 0..n {
        service_id.push((i as i64 % services + 1) as i32);
        part_id.push(rng.between(1, parts) as i32);
        quantity.push(rng.between(1, 4) as i32);
        updated.push(stamp(&mut rng));
    }
    let service_parts = batch(vec![
        ("service_part_id", ids(n)),
        ("service_id", ints(service_id)),
        ("part_id", ints(part_id)),
        ("quantity", ints(quantity)),
        ("updated_at", timestamps(updated)),
    ]);

    let customer_count = count("customers") as i64;
    let n = count("sales_order");
    columns!(customer, date, status, total, created, updated);
    let epoch_days = (epoch - NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")).num_days() as i32;
    for _ in 0..n {
        let s = rng.pick(STATUSES);
        let offset = rng.between(0, 300);
        customer.push(rng.between(1, customer_count) as i32);
        date.push(epoch_days + offset as i32);
        status.push(Some(s));
        total.push(if s == "CANCELLED" {
            0
        } else {
            rng.between(2_000, 500_000) as i128
        });
        let t = base + offset * day + rng.between(0, day - 1);
        created.push(t);
        updated.push(t + rng.between(0, 5 * day));
    }
    let sales_order = batch(vec![
        ("order_id", ids(n)),
        ("customer_id", ints(customer)),
        ("order_date", Arc::new(Date32Array::from(date))),
        ("status", text(status)),
        ("total_amount", money(total, 10)),
        ("created_at", timestamps(created)),
        ("updated_at", timestamps(updated)),
    ]);
    let orders = n as i64;

    let n = count("sales_order_parts");
    columns!(order_id, part_id, quantity, price, updated);
    for _ in 0..n {
        order_id.push(rng.between(1, orders) as i32);
        part_id.push(rng.between(1, parts) as i32);
        quantity.push(rng.between(1, 6) as i32);
        price.push(rng.between(499, 149_999) as i128);
        updated.push(stamp(&mut rng));
    }
    let sales_order_parts = batch(vec![
        ("order_part_id", ids(n)),
        ("order_id", ints(order_id)),
        ("part_id", ints(part_id)),
        ("quantity", ints(quantity)),
        ("unit_price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);

    let n = count("sales_order_services");
    columns!(order_id, service_id, price, updated);
    for _ in 0..n {
        order_id.push(rng.between(1, orders) as i32);
        service_id.push(rng.between(1, services) as i32);
        price.push(rng.between(2_500, 120_000) as i128);
        updated.push(stamp(&mut rng));
    }
    let sales_order_services = batch(vec![
        ("order_service_id", ids(n)),
        ("order_id", ints(order_id)),
        ("service_id", ints(service_id)),
        ("price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);

    vec![
        TableData {
            name: "customers",
            batch: customers,
        },
        TableData {
            name: "auto_parts",
            batch: auto_parts,
        },
        TableData {
            name: "service",
            batch: service,
        },
        TableData {
            name: "service_parts",
            batch: service_parts,
        },
        TableData {
            name: "sales_order",
            batch: sales_order,
        },
        TableData {
            name: "sales_order_parts",
            batch: sales_order_parts,
        },
        TableData {
            name: "sales_order_services",
            batch: sales_order_services,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_reference_row_counts_deterministically() {
        let first = generate();
        for (table, (name, rows)) in first.iter().zip(ROW_COUNTS) {
            assert_eq!(table.name, name);
            assert_eq!(table.batch.num_rows(), rows, "{name}");
        }
        let again = generate();
        assert!(
            first.iter().zip(&again).all(|(a, b)| a.batch == b.batch),
            "same seed, same data"
        );
        assert!(
            first
                .iter()
                .zip(&generate_scaled(1))
                .all(|(a, b)| a.batch == b.batch),
            "scale 1 is the reference data"
        );
    }

    /// The first column of each table is its key, numbered `1..=rows` by the generator.
    fn keys(batch: &RecordBatch) -> Vec<i32> {
        batch
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .expect("int keys")
            .values()
            .to_vec()
    }

    #[test]
    fn scale_2_doubles_every_table_and_keeps_keys_unique() {
        let tables = generate_scaled(2);
        for (table, (name, rows)) in tables.iter().zip(ROW_COUNTS) {
            assert_eq!(table.name, name);
            assert_eq!(table.batch.num_rows(), 2 * rows, "{name}");
            let mut keys = keys(&table.batch);
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), 2 * rows, "{name}: duplicate keys");
        }
        // The natural keys the rules check for uniqueness stay unique too.
        let parts = super::super::table(&tables, "auto_parts");
        let numbers = parts
            .column_by_name("part_number")
            .expect("part_number")
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .expect("text")
            .iter()
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(numbers.len(), 2 * 400);
    }

    /// Foreign keys are drawn over the scaled tables: they reach past the scale-1 counts and
    /// never past the scaled ones.
    #[test]
    fn scaled_foreign_keys_span_the_scaled_tables() {
        let tables = generate_scaled(2);
        let column = |table: &str, column: &str| -> Vec<i32> {
            super::super::table(&tables, table)
                .column_by_name(column)
                .expect("column")
                .as_any()
                .downcast_ref::<Int32Array>()
                .expect("int")
                .values()
                .to_vec()
        };
        for (table, column_name, target) in [
            ("sales_order", "customer_id", "customers"),
            ("sales_order_parts", "order_id", "sales_order"),
            ("sales_order_parts", "part_id", "auto_parts"),
            ("sales_order_services", "service_id", "service"),
            ("service_parts", "service_id", "service"),
        ] {
            let referenced = super::super::table(&tables, target).num_rows() as i32;
            let values = column(table, column_name);
            let max = *values.iter().max().expect("rows");
            assert!(
                max > referenced / 2 && max <= referenced,
                "{table}.{column_name}: max {max} of {referenced}"
            );
            assert!(values.iter().all(|v| *v >= 1), "{table}.{column_name}");
        }
    }
}
