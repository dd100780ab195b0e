-- sim: Leads=10 Orders=10
-- IMPORT FOREIGN SCHEMA from live metadata.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads, orders, notes, nosuchmodule) FROM SERVER zoho INTO zoho_crm;
\d zoho_crm.orders
SELECT foreign_table_name FROM information_schema.foreign_tables WHERE foreign_table_schema = 'zoho_crm' ORDER BY 1;
CREATE SCHEMA everything;
IMPORT FOREIGN SCHEMA crm EXCEPT (surveys) FROM SERVER zoho INTO everything;
SELECT foreign_table_name FROM information_schema.foreign_tables WHERE foreign_table_schema = 'everything' ORDER BY 1;
-- Types follow the field's data_type (formulas by their return type).
SELECT c.column_name, c.data_type, o.option_value AS zoho_type
  FROM information_schema.columns c
  JOIN information_schema.column_options o USING (table_schema, table_name, column_name)
 WHERE table_schema = 'everything' AND table_name = 'deals' AND o.option_name = 'zoho_type'
 ORDER BY c.ordinal_position;
