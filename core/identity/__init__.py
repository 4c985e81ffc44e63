"""Who a customer is: platform users linked to store customers, and their data rights."""
