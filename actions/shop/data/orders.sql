-- Demo Shop sample orders. The action server materialises this into SQLite on first use
-- (see actions/demo_shop/orders.py); edit here, not in the generated database (it is rebuilt
-- from this file once per process, in one transaction: other processes keep reading the old
-- table until it commits). contact_phone / contact_email are what a customer must name before
-- the assistant reveals an order's details.
BEGIN;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    items         TEXT NOT NULL,
    items_zh      TEXT NOT NULL,  -- the items' names in Chinese (replies to Chinese customers)
    total_cny     REAL NOT NULL,
    status        TEXT NOT NULL CHECK (status IN
                  ('processing', 'shipped', 'out_for_delivery', 'delivered', 'cancelled', 'returned')),
    carrier       TEXT,
    tracking_no   TEXT,
    placed_on     TEXT NOT NULL,
    eta           TEXT,
    contact_phone TEXT NOT NULL,
    contact_email TEXT NOT NULL
);

INSERT OR REPLACE INTO orders VALUES
  ('KF100234', 'wireless earbuds', '无线耳机', 399.0, 'shipped', 'SF Express', 'SF1402938475', '2026-11-20', '2026-11-30', '13800138000', 'wang.fang@example.com'),
  ('KF100871', 'smart watch', '智能手表', 1299.0, 'processing', NULL, NULL, '2026-11-27', '2026-12-02', '13900139000', 'li.na@example.com'),
  ('KF104512', 'phone case, USB-C cable', '手机壳、USB-C 数据线', 89.0, 'delivered', 'ZTO Express', 'ZTO7731022841', '2026-11-10', '2026-11-14', '13700137000', 'zhang.wei@example.com'),
  ('KF100555', 'running shoes', '跑鞋', 659.0, 'out_for_delivery', 'JD Logistics', 'JDV0081223341', '2026-11-24', '2026-11-28', '15900159000', 'chen.jing@example.com'),
  ('KF100321', 'coffee grinder', '咖啡磨豆机', 288.0, 'cancelled', NULL, NULL, '2026-11-18', NULL, '18800188000', 'liu.yang@example.com'),
  ('KF103300', 'engraved watch', '定制刻字手表', 1880.0, 'processing', NULL, NULL, '2026-11-26', '2026-12-05', '13600136000', 'zhao.lei@example.com'),
  ('KF109999', 'laptop stand', '笔记本电脑支架', 199.0, 'returned', 'SF Express', 'SF1400012399', '2026-10-30', '2026-11-03', '15800158000', 'sun.li@example.com'),
  ('KF100042', 'bluetooth speaker', '蓝牙音箱', 459.0, 'shipped', 'YTO Express', 'YT8839201127', '2026-11-22', '2026-12-01', '18600186000', 'zhou.min@example.com');
COMMIT;
