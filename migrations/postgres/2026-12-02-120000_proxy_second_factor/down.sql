ALTER TABLE settings DROP COLUMN second_factor_after_proxy;
