// Apply the CRM's customer data to the Tryton party. The engine writes only
// the fields the CRM changed since its last replica, so a concurrent
// finance edit of another field in Tryton stays.
entity.name = replica.name;
entity.phone = replica.phone;
entity.email = replica.email;
entity.street = replica.street;
entity.city = replica.city;
entity.postal_code = replica.postal_code;
entity.identifier = replica.tax_id;
