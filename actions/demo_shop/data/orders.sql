-- Demo Shop sample orders. The action server materialises this into SQLite on first use
-- (see actions/orders.py); edit here, not in the generated database.
CREATE TABLE IF NOT EXISTS orders (
    order_id      TEXT PRIMARY KEY,
    items         TEXT NOT NULL,
    total_cny     REAL NOT NULL,
    status        TEXT NOT NULL CHECK (status IN
                  ('processing', 'shipped', 'out_for_delivery', 'delivered', 'cancelled', 'returned')),
    carrier       TEXT,
    tracking_no   TEXT,
    placed_on     TEXT NOT NULL,
    eta           TEXT
);

INSERT OR REPLACE INTO orders VALUES
  ('KF100234', 'wireless earbuds', 399.0, 'shipped', 'SF Express', 'SF1402938475', '2026-11-20', '2026-11-30'),
  ('KF100871', 'smart watch', 1299.0, 'processing', NULL, NULL, '2026-11-27', '2026-12-02'),
  ('KF104512', 'phone case, USB-C cable', 89.0, 'delivered', 'ZTO Express', 'ZTO7731022841', '2026-11-10', '2026-11-14'),
  ('KF100555', 'running shoes', 659.0, 'out_for_delivery', 'JD Logistics', 'JDV0081223341', '2026-11-24', '2026-11-28'),
  ('KF100321', 'coffee grinder', 288.0, 'cancelled', NULL, NULL, '2026-11-18', NULL),
  ('KF103300', 'engraved watch', 1880.0, 'processing', NULL, NULL, '2026-11-26', '2026-12-05'),
  ('KF109999', 'laptop stand', 199.0, 'returned', 'SF Express', 'SF1400012399', '2026-10-30', '2026-11-03'),
  ('KF100042', 'bluetooth speaker', 459.0, 'shipped', 'YTO Express', 'YT8839201127', '2026-11-22', '2026-12-01');
